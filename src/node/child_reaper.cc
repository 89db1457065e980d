#include "node/child_reaper.h"

#include <signal.h>
#include <sys/wait.h>

#include <vector>

namespace roam {

namespace {

bool HasEnded(const siginfo_t& info) {
  return info.si_code == CLD_EXITED || info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED;
}

}  // namespace

void ChildReaper::Start() {
  sigchld_.async_wait([this](asio::error_code ec, int) {
    if (ec) return;
    Reap();
    Start();
  });
}

void ChildReaper::Watch(pid_t pid, OnExit on_exit, Held held) {
  watched_[pid] = Watched{std::move(on_exit), std::move(held)};
}

void ChildReaper::Ended(pid_t pid, int status) {
  auto it = watched_.find(pid);
  if (it == watched_.end()) return;
  OnExit on_exit = std::move(it->second.on_exit);
  watched_.erase(it);
  if (on_exit) on_exit(status);
}

void ChildReaper::Reap() {
  std::vector<std::pair<pid_t, int>> ended;
  for (const auto& [pid, w] : watched_) {
    if (w.IsHeld()) continue;
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid != pid ||
        !HasEnded(info)) {
      continue;
    }
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) ended.emplace_back(pid, status);
  }
  // Owners may watch or forget PIDs in their callbacks: called after the walk.
  for (const auto& [pid, status] : ended) Ended(pid, status);
  for (;;) {
    siginfo_t info{};
    if (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT | __WNOTHREAD) != 0 || info.si_pid == 0) break;
    auto it = watched_.find(info.si_pid);
    if (it != watched_.end()) {
      // The engine's, for now (held, or a ptrace stop): the next SIGCHLD comes back.
      if (it->second.IsHeld() || !HasEnded(info)) break;
      int status = 0;
      if (::waitpid(info.si_pid, &status, WNOHANG) == info.si_pid) Ended(info.si_pid, status);
      continue;
    }
    int status = 0;
    if (::waitpid(info.si_pid, &status, WNOHANG | __WNOTHREAD) != info.si_pid) break;
  }
}

}  // namespace roam
