#include "node/engine_worker.h"

#include <signal.h>
#include <pthread.h>
#include <sched.h>

namespace roam {

namespace {

// Holds the calling thread on the CPU it runs on, for one job. Engine work
// is a ping-pong with the tracee (each injected system call is two ptrace
// stops), and on these VMs a wake-up across CPUs costs ~80 us where one on
// the same CPU costs a few: a 16 KiB process's dump took 10-14 ms in roamd
// and 2.5-4 ms pinned (its 62 rt_sigaction queries alone, 8-12 ms against
// 0.5 ms). The engine holds its tracee on this same CPU while it works
// (Tracee::HoldOnThisCpu). A process the job creates inherits the pin; the
// engine gives every restored process its recorded affinity
// (src/ckpt/sched.cc).
class PinnedToThisCpu {
 public:
  PinnedToThisCpu() {
    const int cpu = sched_getcpu();
    if (cpu < 0 || sched_getaffinity(0, sizeof(saved_), &saved_) != 0) return;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    pinned_ = sched_setaffinity(0, sizeof(one), &one) == 0;
  }
  ~PinnedToThisCpu() {
    if (pinned_) sched_setaffinity(0, sizeof(saved_), &saved_);
  }
  PinnedToThisCpu(const PinnedToThisCpu&) = delete;
  PinnedToThisCpu& operator=(const PinnedToThisCpu&) = delete;

 private:
  cpu_set_t saved_;
  bool pinned_ = false;
};

}  // namespace

EngineWorker::EngineWorker(asio::io_context& io) : io_(io) {
  // The engine thread takes no asynchronous signals: roamd's loop does.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  thread_ = std::thread([this] { Loop(); });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

EngineWorker::~EngineWorker() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void EngineWorker::Post(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void EngineWorker::Loop() {
  pthread_setname_np(pthread_self(), "roamd-engine");
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    PinnedToThisCpu pin;
    job();
  }
}

}  // namespace roam
