// A terminal's mode and size as they travel (proto/session.proto): what
// `roam run -t` sends of the user's terminal, what a move carries of a
// job's pseudo-terminal. Reading and setting through any fd of the
// terminal (a pty's master reads and sets its slave's).
#pragma once

#include "common/status.h"
#include "session.pb.h"

namespace roam {

// The mode of the terminal behind `fd`, or an error if it is none.
Result<pb::Termios> ReadTermios(int fd);
Status ApplyTermios(int fd, const pb::Termios& mode);
// The window size (zeros if it has none).
pb::WindowSize ReadWindowSize(int fd);
Status ApplyWindowSize(int fd, const pb::WindowSize& size);

}  // namespace roam
