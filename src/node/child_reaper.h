// ChildReaper: the one place roamd waits for its children. Owners register
// the PIDs they own with what to do when one ends (Watch); everything else
// that ends as roamd's child — orphans it adopted as the subreaper of what it
// runs — is reaped and forgotten.
//
// Reaping by PID: roamd never waits for "any child", so it never takes a
// child (or a ptrace stop) that the engine thread is waiting for.
//  1. Watched PIDs, each by its PID, unless its owner says the engine holds
//     it now (a move). Their parent is roamd's loop thread (a spawned guest)
//     or the engine thread (a moved-in one). Each is looked at first without
//     reaping and reaped only if it ended: a wait by PID also reports the
//     ptrace stops of a process the engine thread traces (pre-copy freezes a
//     guest for a moment before the move holds it), and taking one would
//     leave the engine waiting forever.
//  2. Orphans this thread adopted (__WNOTHREAD: never the engine thread's
//     children), also looked at first without reaping.
//
// Single-threaded: on roamd's loop.
#pragma once

#include <sys/types.h>

#include <asio.hpp>
#include <functional>
#include <map>

namespace roam {

class ChildReaper {
 public:
  using OnExit = std::function<void(int wait_status)>;
  using Held = std::function<bool()>;  // true: the engine holds it; not looked at

  explicit ChildReaper(asio::io_context& io) : sigchld_(io, SIGCHLD) {}

  // Reaps on every SIGCHLD from now on.
  void Start();
  // `on_exit` runs once, when `pid` has ended and been reaped (then it is
  // forgotten). `held` may be null.
  void Watch(pid_t pid, OnExit on_exit, Held held = nullptr);
  void Forget(pid_t pid) { watched_.erase(pid); }
  bool watching(pid_t pid) const { return watched_.count(pid) != 0; }
  // Reaps what has ended now (also after the engine lets a process go, as
  // its SIGCHLD may have come while it was held).
  void Reap();

 private:
  struct Watched {
    OnExit on_exit;
    Held held;
    bool IsHeld() const { return held && held(); }
  };
  void Ended(pid_t pid, int status);

  asio::signal_set sigchld_;
  std::map<pid_t, Watched> watched_;
};

}  // namespace roam
