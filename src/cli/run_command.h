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

// Fds 0-2 the caller left closed (`roam run ... <&-`, a cron job, a process
// that closed its stdin and then left home as its own deputy) would be
// taken by the first socket roam opens, and the deputy's stdin relay would
// read roamd's frames as input. Called first in main: each closed one
// holds /dev/null instead. A program roam run execs at home gets them
// closed again, as its caller left them.
void ReserveClosedStdio();

}  // namespace roam
