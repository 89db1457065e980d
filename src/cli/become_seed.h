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

#include "session.pb.h"

namespace roam {

// DIR and GPID come in `order`, with the pre-copied memory staged here.
[[noreturn]] void BecomeSeed(const pb::ComeHome& order, int fd);

}  // namespace roam
