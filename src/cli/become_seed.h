// BecomeSeed: what a deputy does when its process comes back home
// (docs/MIGRATION.md, "Coming home"). In the deputy's own PID, single-
// threaded, with the user's terminal or pipes at fds 0-2 and its line to
// roamd at FD, it prepares itself to be rebuilt into the process from the
// image in DIR (PrepareInPlaceSeed; memory pre-copy staged in it stays),
// reports that on FD as a StreamFrame.seed_ready, and waits for roamd to
// rebuild it.
//
// If it cannot, it says why on FD and execs `roam run` again as the
// process's deputy (ROAM_TAKE_OVER=GPID): the process runs on where it was.
// If roamd never takes it (roamd gone), it does the same after 30 s.
#pragma once

#include <string>

namespace roam {

[[noreturn]] void BecomeSeed(const std::string& dir, const std::string& gpid, int fd);

}  // namespace roam
