#include "ckpt/write_behind.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <system_error>

namespace roam {

WriteBehind::~WriteBehind() {
  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return pieces_.empty(); });
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Status WriteBehind::Queue(std::vector<iovec> pieces, uint64_t offset) {
  if (pieces.empty()) return Wait();
  if (!thread_.joinable()) {
    size_t bytes = 0;
    for (const iovec& v : pieces) bytes += v.iov_len;
    // A small process's pages: not worth a thread.
    if (bytes < kThreadBytes || !StartThread()) return WriteAll(std::move(pieces), offset);
  }
  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return pieces_.empty(); });
    if (!failed_.ok()) return failed_;
    pieces_ = std::move(pieces);
    offset_ = offset;
  }
  cv_.notify_all();
  return Status::Ok();
}

bool WriteBehind::StartThread() {
  if (no_thread_) return false;
  try {
    thread_ = std::thread([this] { Run(); });
    return true;
  } catch (const std::system_error&) {  // EAGAIN: the user's RLIMIT_NPROC, say
    no_thread_ = true;
    return false;
  }
}

Status WriteBehind::Wait() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return pieces_.empty(); });
  return failed_;
}

void WriteBehind::Run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || !pieces_.empty(); });
    if (pieces_.empty()) return;  // stop_
    std::vector<iovec> pieces = pieces_;
    const uint64_t offset = offset_;
    lock.unlock();
    Status st = WriteAll(std::move(pieces), offset);
    lock.lock();
    if (!st.ok() && failed_.ok()) failed_ = st;
    pieces_.clear();
    cv_.notify_all();
  }
}

Status WriteBehind::WriteAll(std::vector<iovec> pieces, uint64_t offset) const {
  for (size_t i = 0; i < pieces.size();) {
    ssize_t n = pwritev(fd_, &pieces[i], static_cast<int>(std::min<size_t>(pieces.size() - i, IOV_MAX)),
                        static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::Errno("write " + what_, n == 0 ? ENOSPC : errno);
    offset += static_cast<uint64_t>(n);
    // Past what was written: whole pieces, then part of one.
    for (size_t left = static_cast<size_t>(n); left > 0;) {
      if (left >= pieces[i].iov_len) {
        left -= pieces[i].iov_len;
        ++i;
      } else {
        pieces[i].iov_base = static_cast<char*>(pieces[i].iov_base) + left;
        pieces[i].iov_len -= left;
        left = 0;
      }
    }
  }
  return Status::Ok();
}

}  // namespace roam
