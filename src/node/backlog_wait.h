// The last step of a move before the freeze, on its source: what waits for
// the tree in the kernel's socket queues (connections its listeners have
// not accepted, handshakes under way to them, datagrams its UDP sockets
// have not read: ckpt/files.h SocketBacklogOf) would refuse the dump as busy,
// and a server under load always has some. So new ones are held off first
// (its own address: net_lock.h HoldNewConnections, by the caller), and the
// tree, still running, takes those waiting. It is frozen as
// ckpt/files.h BacklogDrain says (nothing waits, or it stopped taking
// them, or 2 s passed): then the dump refuses it and names what waits. A
// tree with no socket costs one read of its fds in /proc.
#pragma once

#include <sys/types.h>

#include <asio.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "ckpt/files.h"

namespace roam {

class BacklogWait {
 public:
  explicit BacklogWait(asio::io_context& io) : timer_(io) {}

  // Looks now, then every kEvery on the loop, until it may freeze: then
  // `then` runs. `waiting(text)` runs at each look that found something
  // (for progress). Both may hold their owner (shared_from_this): they are
  // dropped once `then` has run, or at Cancel().
  void Run(pid_t pid, std::string gpid, std::function<void(const std::string&)> waiting, std::function<void()> then);
  void Cancel();

 private:
  void Look();

  asio::steady_timer timer_;
  pid_t pid_ = 0;
  std::string gpid_;
  std::function<void(const std::string&)> waiting_;
  std::function<void()> then_;
  std::optional<BacklogDrain> drain_;
  bool told_ = false;  // the log has it
};

}  // namespace roam
