// Running a helper program (fork + exec, no shell) and waiting for it, with
// its stdout and stderr captured. Used for iproute2's `ip`.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace roam::localcluster {

struct CommandOutput {
  int exit_status = 0;  // exit code, or 128+N if killed by signal N
  std::string output;   // stdout and stderr, interleaved
};

// Runs argv[0] (looked up in PATH if it holds no '/') with argv, stdin from
// /dev/null, and waits. An error only if it could not be started at all.
// REQUIRES: !argv.empty().
Result<CommandOutput> RunCommand(const std::vector<std::string>& argv);

// Runs the command and turns a non-zero exit into an error
// "<argv joined>: <first line of output>".
Status RunChecked(const std::vector<std::string>& argv);

// Converts a waitpid() status into a shell-style exit status.
int ShellExitStatus(int wait_status);

}  // namespace roam::localcluster
