#include "node/job_terminal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>

#include "common/terminal.h"

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
