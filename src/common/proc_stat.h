// /proc/PID/stat and /proc/PID/task/TID/children, parsed once for every part
// of roam that needs them (the load sampler, `roam cluster`, later `roam ps`
// and the checkpoint engine). Pure functions of the text, and readers of
// /proc built on them; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace roam {

// Fields are named as in proc(5); the number is the field's position there.
struct ProcStat {
  int pid = 0;             // 1
  std::string comm;        // 2, raw: may hold spaces, parentheses, newlines
  char state = '?';        // 3: R, S, D, Z, T, ...
  int ppid = 0;            // 4
  int pgrp = 0;            // 5
  int session = 0;         // 6
  int tty_nr = 0;          // 7: the controlling terminal's device, 0 if none
  int tpgid = 0;           // 8: its foreground process group (-1: none)
  uint32_t flags = 0;      // 9: PF_* bits
  uint64_t cpu_ticks = 0;  // 14 + 15: utime + stime, in clock ticks
  int num_threads = 0;     // 20
  int exit_signal = 0;     // 38: signal sent to the parent at exit

  // Memory layout. The kernel prints 0 (no mm, e.g. a kernel thread) or 1
  // (reader may not ptrace the process) in place of the real addresses.
  uint64_t start_code = 0;   // 26
  uint64_t end_code = 0;     // 27
  uint64_t start_stack = 0;  // 28
  uint64_t start_data = 0;   // 45
  uint64_t end_data = 0;     // 46
  uint64_t start_brk = 0;    // 47
  uint64_t arg_start = 0;    // 48
  uint64_t arg_end = 0;      // 49
  uint64_t env_start = 0;    // 50
  uint64_t env_end = 0;      // 51
  int exit_code = 0;         // 52: wait status, once the thread has exited

  // Fields present in the text (pid is field 1). Fields past it keep their
  // zero defaults; Linux >= 3.5 prints 52.
  int field_count = 0;
};

// Parses the text of /proc/PID/stat. The command may hold spaces,
// parentheses and newlines: the fields after it start after the last ')'.
// REQUIRES of the text: a pid > 0 and at least fields 1-15; every field
// that ProcStat holds and the text has must be a well-formed number.
// An error names the first field that is wrong.
Result<ProcStat> ParseProcStat(const std::string& text);

// The same, for callers that only need to know whether it parsed.
bool ParseProcStat(const std::string& text, ProcStat* out);

// The state letter of process `pid` now (R, S, T, Z ...), or 0 if it is gone.
char ReadProcState(int pid);

// Parses /proc/PID/task/TID/children: pids separated by spaces, with a
// trailing space ("12 13 "), or empty. Words that are not pids > 0 (the
// kernel writes none) are left out, and then *error, if given, is set to
// an error naming the first; otherwise *error is set to ok.
std::vector<int> ParseChildrenList(const std::string& text, Status* error = nullptr);

// `root` and its descendants now, parents before children, read from
// /proc (a process forked or gone meanwhile may be missed or listed).
std::vector<int> ReadProcessTree(int root);

}  // namespace roam
