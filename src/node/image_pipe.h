// ImagePipe: the ImageSink of a move's source. The dump writes the image
// into it on the engine thread; roamd's loop takes the bytes out in pieces
// of at most 1 MiB and sends them (ImageSender) while the dump goes on. So
// the image is on the link as it is read from the frozen process, and the
// source writes no image file.
//
// The writer waits while `high_water` bytes are queued, so that memory
// stays bounded whatever the image's size. Cancel() (the move failed, the
// link is gone) makes the waiting write and every later one fail at once:
// a dump never waits for a reader that went away.
//
// Thread-safe: one writer thread (the dump), one reader (the loop).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>

#include "ckpt/image_sink.h"

namespace roam {

class ImagePipe : public ImageSink {
 public:
  struct Piece {
    std::string name;
    uint64_t offset = 0;
    std::string data;
  };
  static constexpr size_t kPieceMax = 1 << 20;

  explicit ImagePipe(size_t high_water = 8 << 20) : high_water_(high_water) {}

  // Writer side (ImageSink). Consecutive writes to one file are joined into
  // pieces; a piece is queued when it is full, when the write does not
  // follow on, or when the file is closed.
  Status Write(const std::string& name, uint64_t offset, const void* data, size_t len) override;
  Status Close(const std::string& name) override;
  Status Sync() override { return Status::Ok(); }
  void Abort() override;  // drops what is queued
  std::string Where(const std::string& name) const override { return name + " (streamed)"; }

  // Reader side. `wake` is called, on the writer's thread, when a piece is
  // queued into an empty pipe; it must only post the reader to its loop.
  void set_wake(std::function<void()> wake);
  // Takes the oldest queued piece; false if none is queued now.
  bool Take(Piece* out);
  // Ends the pipe for the writer: its writes fail from now on.
  void Cancel();

  size_t queued_bytes() const;

 private:
  Status Queue(Piece piece);  // REQUIRES: mu_ not held

  const size_t high_water_;
  Piece open_;  // being joined; only the writer touches it
  mutable std::mutex mu_;
  std::condition_variable room_;
  std::deque<Piece> queue_;     // GUARDED_BY(mu_)
  size_t queued_ = 0;           // GUARDED_BY(mu_)
  bool cancelled_ = false;      // GUARDED_BY(mu_)
  std::function<void()> wake_;  // GUARDED_BY(mu_)
};

}  // namespace roam
