#include "node/job_terminal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>

#include "wire/terminal.h"

namespace roam {

Result<JobPty> OpenJobPty(uid_t uid, const pb::Termios* mode, const pb::WindowSize* size) {
  JobPty p;
  p.master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  const char* name = p.master >= 0 && ::grantpt(p.master) == 0 && ::unlockpt(p.master) == 0 ? ::ptsname(p.master) : nullptr;
  if (name) p.slave = ::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  Status st;
  if (p.slave < 0) {
    st = Status::Errno("cannot allocate a pseudo-terminal");
  } else if (::fchown(p.slave, uid, static_cast<gid_t>(-1)) != 0 || ::fchmod(p.slave, 0620) != 0) {
    st = Status::Errno("pseudo-terminal ownership");
  } else {
    if (mode) st = ApplyTermios(p.slave, *mode);
    if (st.ok() && size) st = ApplyWindowSize(p.slave, *size);
  }
  if (st.ok()) return p;
  if (p.slave >= 0) ::close(p.slave);
  if (p.master >= 0) ::close(p.master);
  return st;
}

Result<int> OpenPtyPeer(int master) {
  int fd = ::ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return Status::Errno("open the pseudo-terminal's slave");
  return fd;
}

Result<std::string> TakeUnreadInput(int tty) {
  termios saved{};
  if (::tcgetattr(tty, &saved) != 0) return Status::Errno("tcgetattr");
  // Out of canonical mode, a line still being typed is readable too (the
  // kernel makes everything buffered available when ICANON goes off).
  termios drain = saved;
  drain.c_lflag &= ~static_cast<tcflag_t>(ICANON);
  drain.c_cc[VMIN] = 0;
  drain.c_cc[VTIME] = 0;
  if (::tcsetattr(tty, TCSANOW, &drain) != 0) return Status::Errno("tcsetattr");
  std::string got;
  char buf[4096];
  Status st;
  for (;;) {
    ssize_t n = ::read(tty, buf, sizeof buf);
    if (n > 0) {
      got.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN) st = Status::Errno("read the terminal's input");
    break;
  }
  if (::tcsetattr(tty, TCSANOW, &saved) != 0 && st.ok()) st = Status::Errno("tcsetattr");
  if (!st.ok()) {
    (void)PutUnreadInput(tty, got);
    return st;
  }
  // A canonical terminal keeps a typed ^D as a NUL that ends the line.
  if (saved.c_lflag & ICANON) std::replace(got.begin(), got.end(), '\0', static_cast<char>(saved.c_cc[VEOF]));
  return got;
}

Status PutUnreadInput(int tty, const std::string& bytes, bool echoed) {
  if (bytes.empty()) return Status::Ok();
  if (!echoed) {
    for (char c : bytes) {
      if (::ioctl(tty, TIOCSTI, &c) != 0) return Status::Errno("put input into the terminal (TIOCSTI)");
    }
    return Status::Ok();
  }
  termios saved{};
  if (::tcgetattr(tty, &saved) != 0) return Status::Errno("tcgetattr");
  // ICANON stays as it is (switching it would end the line being typed).
  termios quiet = saved;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO | ECHONL | ISIG | IEXTEN);
  quiet.c_iflag &= ~static_cast<tcflag_t>(INLCR | IGNCR | ICRNL | IUCLC | ISTRIP | IXON);
  if (::tcsetattr(tty, TCSANOW, &quiet) != 0) return Status::Errno("tcsetattr");
  Status st;
  for (char c : bytes) {
    if (::ioctl(tty, TIOCSTI, &c) != 0) {
      st = Status::Errno("put input back into the terminal (TIOCSTI)");
      break;
    }
  }
  if (::tcsetattr(tty, TCSANOW, &saved) != 0 && st.ok()) st = Status::Errno("tcsetattr");
  return st;
}

bool RecordTerminal(int fd, pb::ImageEnd* end) {
  Result<pb::Termios> mode = ReadTermios(fd);
  if (!mode.ok()) return false;
  *end->mutable_tty_mode() = *mode;
  *end->mutable_tty_size() = ReadWindowSize(fd);
  return true;
}

Result<int> TerminalOf(pid_t pid) {
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) return Status::Errno("pidfd_open " + std::to_string(pid));
  int found = -1;
  for (int fd = 0; fd <= 2 && found < 0; ++fd) {
    int ours = static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd, fd, 0));
    if (ours < 0) continue;
    if (::isatty(ours)) {
      found = ours;
    } else {
      ::close(ours);
    }
  }
  ::close(pidfd);
  return found;
}

}  // namespace roam
