// The pseudo-terminal of a `roam run -t` job on its guest: made for a job
// that starts or moves in, and, when the job moves on, emptied of the
// input the job has not read so that it goes with the job
// (docs/MIGRATION.md, "A job with a terminal").
#pragma once

#include <sys/types.h>

#include <string>

#include "common/status.h"
#include "common/terminal.h"
#include "migrate.pb.h"
#include "session.pb.h"

namespace roam {

struct JobPty {
  int master = -1;
  int slave = -1;  // not this process's controlling terminal
};

// A new pseudo-terminal whose slave belongs to `uid` (mode 0620, as login
// terminals), in `mode` and of `size` when given (non-null). Both fds are
// O_CLOEXEC; the caller closes them.
Result<JobPty> OpenJobPty(uid_t uid, const pb::Termios* mode, const pb::WindowSize* size);

// Terminal `fd`'s mode and size into `end` (tty_mode, tty_size) for the
// new pty a move's target makes; false, and nothing set, if it is none.
// A pty's master reads its slave's.
bool RecordTerminal(int fd, pb::ImageEnd* end);

// The terminal at the first of `pid`'s fds 0-2 that is one, as an fd of
// ours (pidfd_getfd), or -1 if none is.
Result<int> TerminalOf(pid_t pid);

}  // namespace roam
