// EngineWorker: the one thread on which roamd runs the checkpoint engine.
//
// Why a thread of its own, and one for the life of roamd: a dump takes
// seconds for a large process and must never stall the event loop
// (membership ticks every 100 ms); ptrace binds a tracee to the thread that
// seized it, so freezing and later resuming or killing must happen on the
// same thread; and a restored process's parent is the thread that created
// it, so its parent-death signal (a guest dies with its roamd) fires when
// that thread ends, which is when roamd ends.
//
// Jobs run one at a time, in the order posted. A job's result comes back on
// the event loop through `done`. Objects that hold tracees (FrozenTree,
// RestoredTree) must be created, used and destroyed inside jobs.
#pragma once

#include <asio.hpp>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

namespace roam {

class EngineWorker {
 public:
  explicit EngineWorker(asio::io_context& io);
  ~EngineWorker();  // runs the jobs already queued, then joins
  EngineWorker(const EngineWorker&) = delete;
  EngineWorker& operator=(const EngineWorker&) = delete;

  // Runs `job` on the engine thread, then `done(result)` on the event loop.
  template <typename R>
  void Run(std::function<R()> job, std::function<void(R)> done) {
    asio::io_context* io = &io_;
    Post([io, job = std::move(job), done = std::move(done)]() mutable {
      auto result = std::make_shared<R>(job());
      asio::post(*io, [done = std::move(done), result] { done(std::move(*result)); });
    });
  }
  // Runs `job` on the engine thread; nothing comes back.
  void Post(std::function<void()> job);
  // The event loop that results come back on.
  asio::io_context& io() { return io_; }

 private:
  void Loop();

  asio::io_context& io_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;  // GUARDED_BY(mu_)
  bool stopping_ = false;                   // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace roam
