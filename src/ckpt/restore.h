// `roam restore`: brings an image back to life with the same PIDs.
//
// The whole image is verified before any process is created. Then the root
// "seed" is created with clone3(set_tid); it opens every file of the tree
// and creates its children the same way, each seed putting its fds at
// their numbers; then this process takes every seed under ptrace and
// rebuilds it into the dumped process by injected system calls (memory,
// signals, timers, credentials...) and finally loads its registers and lets
// it go. If anything fails, every process created is killed and nothing is
// left running.
#pragma once

#include <string>

#include "common/status.h"

namespace roam {

struct RestoreOptions {
  bool detach = false;  // return once the tree runs, instead of waiting for the root
};

// Returns the root's exit status as a shell reports it (128+N for signal
// N), or 0 with `detach`.
Result<int> Restore(const std::string& dir, const RestoreOptions& options);

}  // namespace roam
