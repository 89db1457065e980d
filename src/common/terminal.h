// A terminal's mode, size and unread bytes as they travel
// (proto/session.proto): what `roam run -t` sends of the user's terminal,
// what a move carries of a job's pseudo-terminal, what an image carries of
// a pseudo-terminal pair inside the tree (ckpt/file_pty.cc). Reading and
// setting through any fd of the terminal (a pty's master reads and sets
// its slave's).
#pragma once

#include <string>

#include "common/status.h"
#include "session.pb.h"

namespace roam {

// The mode of the terminal behind `fd`, or an error if it is none.
Result<pb::Termios> ReadTermios(int fd);
Status ApplyTermios(int fd, const pb::Termios& mode);
// The window size (zeros if it has none).
pb::WindowSize ReadWindowSize(int fd);
Status ApplyWindowSize(int fd, const pb::WindowSize& size);

// The slave of pty master `master`, opened anew (O_NOCTTY, non-blocking).
Result<int> OpenPtyPeer(int master);

// Input the job was given and has not read, taken out of terminal `tty`:
// complete lines and a line still being typed. In canonical mode an end
// of input (^D) typed and not yet read comes back as the VEOF character.
// REQUIRES: nothing reads the terminal meanwhile (the job is frozen).
Result<std::string> TakeUnreadInput(int tty);

// Puts `bytes` into terminal `tty` as typed and not yet read. `echoed`:
// they were processed once already (read back by TakeUnreadInput), so they
// go in without echo, signals or translation; otherwise as if typed now.
// Needs CAP_SYS_ADMIN (TIOCSTI).
Status PutUnreadInput(int tty, const std::string& bytes, bool echoed = true);

}  // namespace roam
