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
  // Time its threads ran or waited for a CPU (/proc/PID/task/*/schedstat),
  // ns: between two samples, the CPUs it wanted, even on a node whose quota
  // keeps it from getting them. 0 if the kernel keeps no schedstats.
  uint64_t sched_ns = 0;
};

Result<ProcSample> SampleProc(pid_t pid, const std::string& proc = "/proc");
// "running", "sleeping", "stopped", ... for a /proc state letter.
std::string ProcStateName(char state);
// Percent of one CPU used between two samples `elapsed_ms` apart.
double CpuPercent(uint64_t ticks_before, uint64_t ticks_after, int64_t elapsed_ms);
double TicksToSeconds(uint64_t ticks);
// run + wait ns of /proc/PID/schedstat text ("run wait timeslices"); 0 if malformed.
uint64_t ParseSchedstat(const std::string& text);
// The CPUs a process wanted between two samples `elapsed_ms` apart.
double CpuDemand(uint64_t sched_ns_before, uint64_t sched_ns_after, int64_t elapsed_ms);

}  // namespace roam
