// /proc/PID/stat, parsed once for every part of roam that needs it
// (the load sampler, `roam cluster`, later `roam ps` and the engine).
#pragma once

#include <cstdint>
#include <string>

namespace roam {

struct ProcStat {
  int pid = 0;
  std::string comm;
  char state = '?';  // R, S, D, Z, T, ...
  int ppid = 0;
  uint64_t cpu_ticks = 0;  // utime + stime, in clock ticks
};

// Parses the text of /proc/PID/stat. The command may hold spaces and
// parentheses: the fields after it start after the last ')'. False if the
// text is malformed.
bool ParseProcStat(const std::string& text, ProcStat* out);

}  // namespace roam
