// `roam __seed DIR GPID FD`: not for users. What a deputy execs when its
// process comes back home (docs/MIGRATION.md, "Coming home"): in the
// deputy's own PID, with the user's terminal or pipes at fds 0-2 and its
// line to roamd at FD, it prepares itself to be rebuilt into the process
// from the image in DIR (PrepareInPlaceSeed), reports that on FD as a
// StreamFrame.seed_ready, and waits for roamd to rebuild it.
//
// If it cannot, it says why on FD and execs `roam run` again as the
// process's deputy (ROAM_TAKE_OVER=GPID): the process runs on where it was.
// If roamd never takes it (roamd gone), it does the same after 30 s.
#pragma once

namespace roam {

int SeedCommand(int argc, char** argv);

}  // namespace roam
