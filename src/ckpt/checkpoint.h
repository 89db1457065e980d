// `roam checkpoint`: freezes a process and its descendants, writes them to
// an image directory, and then kills them (the default) or lets them run on
// (--leave-running: frozen only while their state is read).
//
// Anything the engine cannot carry is refused before the image is written
// and the processes are left running as they were, untouched.
#pragma once

#include <sys/types.h>

#include <string>

#include "common/status.h"

namespace roam {

struct CheckpointOptions {
  bool leave_running = false;
};

struct CheckpointReport {
  int processes = 0;
  uint64_t pages_saved = 0;
  uint64_t zero_pages_skipped = 0;
  int64_t freeze_ns = 0;  // from the first freeze to the last release (or kill)
};

Result<CheckpointReport> Checkpoint(pid_t root, const std::string& dir, const CheckpointOptions& options);

}  // namespace roam
