// File locks a process holds: flock(2) locks, POSIX record locks (fcntl
// F_SETLK) and open file description locks (F_OFD_SETLK). Both sides.
//
// The dump reads them from /proc/PID/fdinfo/FD, whose "lock:" lines show
// the locks taken through that open file (a flock or OFD lock shows on
// every fd of its open file description, in every process sharing it:
// each is recorded, and taking one twice is harmless), and records them
// in the process's image; the frozen copy goes on holding them until it is
// killed (or execs its deputy, leaving home: ExecRoot lets them go).
// `roam checkpoint --leave-running` keeps them held.
//
// The restore takes each again through the process's own fd, by a call
// injected into it (a POSIX lock belongs to the process that takes it),
// once its fd table is final: closing any fd of a file drops the
// process's POSIX locks on it. A move's target restores with them
// deferred (RestoreOptions::defer_locks) and takes them only once the move
// is committed and the source's copy is being killed, waiting until it
// can, the process held: so a lock on a file both nodes see (NFS, a `roam
// cluster`'s shared directory) is free only between the copy's death and
// the target's taking it. A restore that finds one held by another
// process fails (kBusy), the image intact. Leases and delegations
// (F_SETLEASE) are refused before anything is touched.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "image.pb.h"

namespace roam {

class Tracee;

// One "lock:" value of fdinfo ("1: POSIX  ADVISORY  WRITE 14418
// fe:00:10954089 5 14", "2: FLOCK  ADVISORY  READ 77 fe:00:12 0 EOF").
// kCantMove for a lease or delegation; an error for text it cannot read.
// Sets everything but the fd. Pure.
Result<pb::FileLock> ParseLockLine(const std::string& value);

// Calls injected into the held process `t` (its syscall_ip set), with
// `scratch` (>= 64 bytes of its memory) for the fcntl arguments.
// Lets `locks` go (an error leaves the rest held).
Status ReleaseLocks(Tracee& t, uint64_t scratch, const std::vector<pb::FileLock>& locks);
// Takes `locks`; one held by another process: kBusy, naming the fd.
Status TakeLocks(Tracee& t, uint64_t scratch, const std::vector<pb::FileLock>& locks);

}  // namespace roam
