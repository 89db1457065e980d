// /proc/PID/timers: the POSIX timers (timer_create) of a process, as the
// checkpoint engine dumps them. Needs CONFIG_CHECKPOINT_RESTORE. Pure;
// thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace roam {

struct PosixTimerInfo {
  int id = 0;            // the timer_t the process sees
  int signo = 0;         // 0 for SIGEV_NONE
  uint64_t sigval = 0;   // sigev_value, as a pointer-sized integer
  std::string notify;    // "signal", "thread" or "none"
  // SIGEV_THREAD_ID was set: the signal goes to thread notify_tid. Otherwise
  // notify_tid is the pid the timer belongs to.
  bool notify_to_thread = false;
  int notify_tid = 0;
  int clockid = 0;       // negative for CPU-time clocks of a given pid/thread
};

// Parses the text of /proc/PID/timers: for each timer, four lines
//   ID: 1 / signal: 10/000000000000002a / notify: signal/tid.4242 / ClockID: 0
// in that order. Empty text means no timers. An error names the line number.
Result<std::vector<PosixTimerInfo>> ParseProcTimers(const std::string& text);

}  // namespace roam
