// The CLI's one way to fail: one line on stderr, "roam COMMAND: what went
// wrong", and the exit code the command's contract gives (docs/CLI.md: 1,
// or 255 for `roam run`, whose own exit codes belong to the process).
#pragma once

#include <string>

#include "common/status.h"

namespace roam {

// Prints "roam <command>: <message>" and returns `exit_code`.
int Fail(const std::string& command, const std::string& message, int exit_code = 1);
int Fail(const std::string& command, const Status& st, int exit_code = 1);

}  // namespace roam
