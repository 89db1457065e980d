// `roam run`: starts a command through the local roamd. When the command is
// placed at home, roam run becomes it (exec). Otherwise roam run stays as its
// deputy at home, holding the PID the remote process also has: it relays
// stdin/stdout/stderr, passes signals on, and exits the way the process did
// (the same code, or killed by the same signal). roam's own failures: one
// line on stderr and exit 255.
#pragma once

#include <string>
#include <vector>

namespace roam {

struct RunOptions {
  std::vector<std::string> argv;
  std::string on;  // node; empty: best
  bool lock = false;
  bool tty = false;
  std::string address;  // "auto" or an address of the pool; empty: none
};

int RunCommand(const std::string& socket, const RunOptions& opt);

}  // namespace roam
