// WriteBehind: writes a file's pieces on a thread of its own while the
// caller prepares the next ones. A dump reads the frozen process's pages
// into one buffer while the other goes to the image: on tmpfs the write
// (a copy into freshly allocated pages) costs about twice the read, and on
// two CPUs the two overlap.
//
// One batch is in flight at a time. The thread starts at the first Queue
// of kThreadBytes or more (smaller ones are written at once, until then;
// all are, if no thread can be made); the destructor waits for the last
// batch and ends it.
#pragma once

#include <sys/uio.h>

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"

namespace roam {

class WriteBehind {
 public:
  static constexpr size_t kThreadBytes = 1 << 20;

  // `fd` stays open and unwritten by anyone else until the destructor
  // returns; `what` names it in errors.
  WriteBehind(int fd, std::string what) : fd_(fd), what_(std::move(what)) {}
  ~WriteBehind();
  WriteBehind(const WriteBehind&) = delete;
  WriteBehind& operator=(const WriteBehind&) = delete;

  // Waits for the batch before, then writes `pieces` one after the other
  // from `offset` of the file, behind the caller's back: their bytes must
  // stay as they are until the next Queue or Wait returns. The failure of
  // the batch before, if it failed (then this one is not queued).
  Status Queue(std::vector<iovec> pieces, uint64_t offset);
  // Waits until nothing is in flight; the first failure of any batch.
  Status Wait();

 private:
  void Run();
  // Starts the thread; false if it cannot be made (then never again).
  bool StartThread();
  // Writes all of `pieces` from `offset`, on the calling thread.
  Status WriteAll(std::vector<iovec> pieces, uint64_t offset) const;

  const int fd_;
  const std::string what_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<iovec> pieces_;  // the batch in flight; empty: none
  uint64_t offset_ = 0;
  bool stop_ = false;
  bool no_thread_ = false;
  Status failed_ = Status::Ok();
};

}  // namespace roam
