// ImageSender: streams an image over a node link as ImageChunk frames as
// the dump writes it into an ImagePipe, then one ImageEnd once the caller
// says the image is whole (EndOfImage). It takes a piece from the pipe only
// while the link's send queue is short, so that other frames on the link
// are never far behind; the dump waits meanwhile (ImagePipe's high water).
// Used by both kinds of move source (a guest, or a process leaving home).
// Single-threaded on roamd's loop.
#pragma once

#include <asio.hpp>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "node/image_pipe.h"
#include "node/move_faults.h"
#include "node/link_mux.h"
#include "node/page_codec.h"

namespace roam {

class ImageSender : public std::enable_shared_from_this<ImageSender> {
 public:
  // `chooser` picks each chunk's compression (shared with the move's
  // pre-copy, which measured the link and the data first).
  ImageSender(asio::io_context& io, std::shared_ptr<LinkSession> link, MoveFaults faults,
              std::shared_ptr<CodecChooser> chooser);
  ~ImageSender();

  // The sink the dump writes into (give it to FreezeAndDump).
  std::shared_ptr<ImagePipe> pipe() const { return pipe_; }

  // Starts sending what the dump writes. `done` runs once: ok when ImageEnd
  // is queued, or why sending stopped (the link is then closed).
  void Start(std::function<void(Status)> done);
  // The dump and its seal are done: once the pipe is empty, `fill_end`
  // fills the ImageEnd, which is sent last.
  void EndOfImage(std::function<void(pb::ImageEnd*)> fill_end);
  // Stops: the dump's writes fail from now on; `done` is not called.
  void Cancel();

  uint64_t bytes_sent() const { return bytes_sent_; }               // over the link
  uint64_t bytes_compressed() const { return bytes_compressed_; }   // image bytes that went compressed

 private:
  void SendSome();
  void Finish(Status st);

  asio::io_context& io_;
  std::shared_ptr<LinkSession> link_;
  MoveFaults faults_;
  std::shared_ptr<ImagePipe> pipe_ = std::make_shared<ImagePipe>();
  std::shared_ptr<CodecChooser> chooser_;
  bool ending_ = false;
  uint64_t bytes_sent_ = 0, bytes_compressed_ = 0;
  std::function<void(pb::ImageEnd*)> fill_end_;
  std::function<void(Status)> done_;
};

}  // namespace roam
