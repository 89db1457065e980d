#include "node/image_receiver.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/file_util.h"
#include "node/image_dir.h"
#include "node/page_codec.h"

namespace roam {

namespace {

// An image larger than this is refused while it arrives (a sanity bound on
// what a peer may write into this node's memory-backed /run).
constexpr uint64_t kMaxImageBytes = 64ULL << 30;

}  // namespace

Status ImageReceiver::Open() { return MakeDirs(dir_, 0700); }

Status ImageReceiver::Write(const pb::ImageChunk& c) {
  if (!IsImageFileName(c.name())) return Status::Error("bad image file name '" + c.name() + "'");
  Result<std::string> data = Unpack(c.codec(), c.data(), c.raw_size());
  if (!data.ok()) return data.status().Prefixed(c.name() + ": ");
  received_ += data->size();
  if (received_ > kMaxImageBytes) {
    return Status::Error("image larger than " + std::to_string(kMaxImageBytes >> 30) + " GiB");
  }
  auto it = files_.find(c.name());
  if (it == files_.end()) {
    int fd = open((dir_ + "/" + c.name()).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return Status::Errno("create " + dir_ + "/" + c.name());
    it = files_.emplace(c.name(), fd).first;
  }
  const std::string& d = *data;
  size_t done = 0;
  while (done < d.size()) {
    ssize_t n = pwrite(it->second, d.data() + done, d.size() - done, static_cast<off_t>(c.offset() + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::Errno("write " + dir_ + "/" + c.name(), n == 0 ? ENOSPC : errno);
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

void ImageReceiver::CloseFiles() {
  for (auto& [name, fd] : files_) close(fd);
  files_.clear();
}

}  // namespace roam
