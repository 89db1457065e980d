#include "node/image_pipe.h"

#include <algorithm>
#include <utility>

namespace roam {

Status ImagePipe::Write(const std::string& name, uint64_t offset, const void* data, size_t len) {
  const char* p = static_cast<const char*>(data);
  while (len > 0) {
    const bool follows = open_.name == name && open_.offset + open_.data.size() == offset;
    if (!open_.data.empty() && (!follows || open_.data.size() == kPieceMax)) {
      Piece full = std::exchange(open_, Piece());
      Status st = Queue(std::move(full));
      if (!st.ok()) return st;
    }
    if (open_.data.empty()) {
      open_.name = name;
      open_.offset = offset;
    }
    size_t n = std::min(len, kPieceMax - open_.data.size());
    open_.data.append(p, n);
    p += n;
    len -= n;
    offset += n;
  }
  return Status::Ok();
}

Status ImagePipe::Close(const std::string& name) {
  if (open_.name != name || open_.data.empty()) return Status::Ok();
  return Queue(std::exchange(open_, Piece()));
}

Status ImagePipe::Queue(Piece piece) {
  std::function<void()> wake;
  {
    std::unique_lock<std::mutex> lock(mu_);
    room_.wait(lock, [this] { return cancelled_ || queued_ < high_water_; });
    if (cancelled_) return Status::Error(StatusCode::kUnavailable, "the image stream was cancelled");
    if (queue_.empty()) wake = wake_;
    queued_ += piece.data.size();
    queue_.push_back(std::move(piece));
  }
  if (wake) wake();
  return Status::Ok();
}

void ImagePipe::Abort() {
  open_ = Piece();
  std::lock_guard<std::mutex> lock(mu_);
  queue_.clear();
  queued_ = 0;
  room_.notify_all();
}

void ImagePipe::set_wake(std::function<void()> wake) {
  std::lock_guard<std::mutex> lock(mu_);
  wake_ = std::move(wake);
}

bool ImagePipe::Take(Piece* out) {
  std::lock_guard<std::mutex> lock(mu_);
  if (queue_.empty()) return false;
  *out = std::move(queue_.front());
  queue_.pop_front();
  queued_ -= out->data.size();
  room_.notify_all();
  return true;
}

void ImagePipe::Cancel() {
  std::lock_guard<std::mutex> lock(mu_);
  cancelled_ = true;
  wake_ = nullptr;
  room_.notify_all();
}

size_t ImagePipe::queued_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queued_;
}

}  // namespace roam
