// ProcSample: the figures `roam ps` shows for one process (CPU time, RSS,
// state, threads), read from /proc/PID/stat and /proc/PID/statm.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "common/status.h"

namespace roam {

struct ProcSample {
  uint64_t cpu_ticks = 0;  // utime + stime, clock ticks
  uint64_t rss_bytes = 0;
  char state = '?';
  int threads = 0;
};

Result<ProcSample> SampleProc(pid_t pid, const std::string& proc = "/proc");
// "running", "sleeping", "stopped", ... for a /proc state letter.
std::string ProcStateName(char state);
// Percent of one CPU used between two samples `elapsed_ms` apart.
double CpuPercent(uint64_t ticks_before, uint64_t ticks_after, int64_t elapsed_ms);
double TicksToSeconds(uint64_t ticks);

}  // namespace roam
