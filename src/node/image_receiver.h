// ImageReceiver: the receiving end of an image stream (proto/migrate.proto,
// ImageChunk): writes each piece into its file in an image directory on
// this node's tmpfs. Used by both kinds of target: a guest node taking a
// process (MigrationIn) and the home taking one back (HomeArrival).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "common/status.h"
#include "migrate.pb.h"

namespace roam {

class ImageReceiver {
 public:
  explicit ImageReceiver(std::string dir) : dir_(std::move(dir)) {}
  ~ImageReceiver() { CloseFiles(); }
  ImageReceiver(const ImageReceiver&) = delete;
  ImageReceiver& operator=(const ImageReceiver&) = delete;

  // Makes the directory (0700, root's).
  Status Open();
  // Writes one piece. Errors: a bad file name, more than the size bound,
  // or a failed write, each named.
  Status Write(const pb::ImageChunk& c);
  // Once ImageEnd came: every file written is closed.
  void CloseFiles();
  const std::string& dir() const { return dir_; }
  uint64_t received() const { return received_; }

 private:
  std::string dir_;
  std::map<std::string, int> files_;  // image file name -> fd being written
  uint64_t received_ = 0;
};

}  // namespace roam
