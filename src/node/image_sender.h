// ImageSender: streams the files of an image directory over a node link as
// ImageChunk frames (1 MiB each), then one ImageEnd, reading a file only
// while the link's send queue is short, so that a large image never sits
// in memory and other frames on the link are never far behind.
// Used by both kinds of move source (a guest, or a process leaving home).
// Single-threaded on roamd's loop.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "node/move_faults.h"
#include "node/node_link.h"
#include "node/page_codec.h"

namespace roam {

class ImageSender : public std::enable_shared_from_this<ImageSender> {
 public:
  // `chooser` picks each chunk's compression (shared with the move's
  // pre-copy, which measured the link and the data first).
  ImageSender(std::shared_ptr<LinkChannel> link, std::string dir, MoveFaults faults,
              std::shared_ptr<CodecChooser> chooser);
  ~ImageSender();

  // `fill_end` fills the ImageEnd when the last chunk is queued; `done`
  // runs once: ok when ImageEnd is queued, or why sending stopped (the
  // link is then closed).
  void Start(std::function<void(pb::ImageEnd*)> fill_end, std::function<void(Status)> done);
  uint64_t bytes_sent() const { return bytes_sent_; }               // over the link
  uint64_t bytes_compressed() const { return bytes_compressed_; }   // image bytes that went compressed

 private:
  void SendSome();
  void Finish(Status st);

  std::shared_ptr<LinkChannel> link_;
  std::string dir_;
  MoveFaults faults_;
  std::vector<std::string> files_;
  size_t index_ = 0;
  int fd_ = -1;
  uint64_t offset_ = 0, bytes_sent_ = 0, bytes_compressed_ = 0;
  std::shared_ptr<CodecChooser> chooser_;
  std::function<void(pb::ImageEnd*)> fill_end_;
  std::function<void(Status)> done_;
};

}  // namespace roam
