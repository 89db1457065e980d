// `roam mon`: the live view of the cluster (mosmon's successor). On a
// terminal: an ncurses screen refreshed every second with a bar per node of
// the chosen figure, keys l (load), s (speed), m (memory), u (utilisation),
// d (show/hide dead nodes), q (quit). Otherwise: the node table printed every
// second, `count` times (0 = until interrupted).
#pragma once

#include <string>

namespace roam {

int RunMon(const std::string& socket_path, int count);

}  // namespace roam
