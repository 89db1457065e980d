// ImageSink: where a dump writes an image. The engine writes each image
// file (image_file.h) as positional writes and then closes it; what the
// bytes become is the sink's business. `roam checkpoint` writes a directory
// (DirImageSink); a migration source hands them to the node link as they are
// read from the frozen process (node/image_pipe.h), so the source writes no
// image file at all.
//
// A sink sees one dump at a time, from one thread (only a descriptor it
// gave out with FileFd is written from another). Files may be written in
// any order and a file's header may come after its payload (page files are
// written front to back, then their header at offset 0). The inventory is
// written last, after Sync(): a reader treats an image without it as
// incomplete.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"

namespace roam {

class ImageSink {
 public:
  virtual ~ImageSink() = default;

  // Writes `len` bytes at `offset` of file `name`, creating the file at its
  // first write. `name` is a plain file name (image.h names them).
  virtual Status Write(const std::string& name, uint64_t offset, const void* data, size_t len) = 0;
  // No more writes go to `name`.
  virtual Status Close(const std::string& name) = 0;
  // The descriptor of file `name` (created at the first call, as by
  // Write), for positional writes from another thread until Close(name)
  // (write_behind.h); -1 if the sink has none (a stream keeps its order).
  virtual Result<int> FileFd(const std::string& /*name*/) { return -1; }
  // Every file written so far is to last (a directory syncs; a stream has
  // nothing to do).
  virtual Status Sync() = 0;
  // The dump failed: what was written is worth nothing.
  virtual void Abort() = 0;
  // How messages name file `name` (a path, or where the stream goes).
  virtual std::string Where(const std::string& name) const = 0;
};

// The image directory of `roam checkpoint -D DIR`: created (0700) if
// missing; any inventory there is removed first, so that no stale image
// passes for the new one. Abort() removes the files this dump wrote, and
// the directories Open made for it.
// `sync`: Sync() calls syncfs (a checkpoint must survive a crash).
class DirImageSink : public ImageSink {
 public:
  static Result<std::unique_ptr<DirImageSink>> Open(const std::string& dir, bool sync);
  // Writes into an existing `dir` as it is (for single files).
  DirImageSink(std::string dir, bool sync) : dir_(std::move(dir)), sync_(sync) {}

  Status Write(const std::string& name, uint64_t offset, const void* data, size_t len) override;
  Result<int> FileFd(const std::string& name) override;
  Status Close(const std::string& name) override;
  Status Sync() override;
  void Abort() override;
  std::string Where(const std::string& name) const override { return dir_ + "/" + name; }

 private:
  std::string dir_;
  bool sync_;
  std::map<std::string, UniqueFd> open_;  // files being written
  std::set<std::string> created_;         // every file this dump created
  std::vector<std::string> made_dirs_;    // what Open made of dir_, the deepest first
};

}  // namespace roam
