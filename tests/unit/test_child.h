// Helpers for unit tests that fork a child for the engine to work on.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace roam {

// In a forked child: fds 0-2 become /dev/null and every other fd is
// closed, so that whatever the test runner was given (a pipe to ctest, a
// shell's fd) stays out of a dump of the child.
inline void OnlyDevNullFds() {
  int null = open("/dev/null", O_RDWR);
  for (int fd = 0; fd < 3; ++fd) dup2(null, fd);
  for (int fd = 3; fd < 1024; ++fd) close(fd);
}

// Kills a child of this process and reaps it.
inline void KillChild(pid_t pid) {
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

}  // namespace roam
