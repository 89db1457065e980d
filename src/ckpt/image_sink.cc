#include "ckpt/image_sink.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "ckpt/image.h"
#include "common/file_util.h"

namespace roam {

Result<std::unique_ptr<DirImageSink>> DirImageSink::Open(const std::string& dir, bool sync) {
  // The directories MakeDirs is about to make, the deepest first.
  std::vector<std::string> missing;
  std::string d = dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  for (struct stat sb; !d.empty() && d != "/" && stat(d.c_str(), &sb) != 0;) {
    missing.push_back(d);
    const size_t slash = d.rfind('/');
    d = slash == std::string::npos ? "" : d.substr(0, slash);
  }
  Status st = MakeDirs(dir, 0700);
  if (!st.ok()) return st;
  std::string inventory = dir + "/" + kInventoryFile;
  if (unlink(inventory.c_str()) != 0 && errno != ENOENT) return Status::Errno("remove " + inventory);
  std::unique_ptr<DirImageSink> sink(new DirImageSink(dir, sync));
  sink->made_dirs_ = std::move(missing);
  return sink;
}

Result<int> DirImageSink::FileFd(const std::string& name) {
  if (auto it = open_.find(name); it != open_.end()) return it->second.get();
  std::string path = Where(name);
  unlink(path.c_str());  // an older image's file may be someone's hard link
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd.ok()) return Status::Errno("create " + path);
  created_.insert(name);
  return open_.emplace(name, std::move(fd)).first->second.get();
}

Status DirImageSink::Write(const std::string& name, uint64_t offset, const void* data, size_t len) {
  Result<int> fd = FileFd(name);
  if (!fd.ok()) return fd.status();
  const char* p = static_cast<const char*>(data);
  while (len > 0) {
    ssize_t n = pwrite(*fd, p, len, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::Errno("write " + Where(name), n == 0 ? ENOSPC : errno);
    p += n;
    len -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

Status DirImageSink::Close(const std::string& name) {
  open_.erase(name);
  return Status::Ok();
}

Status DirImageSink::Sync() {
  if (!sync_) return Status::Ok();
  UniqueFd dfd(open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dfd.ok() || syncfs(dfd.get()) != 0) return Status::Errno("sync " + dir_);
  return Status::Ok();
}

void DirImageSink::Abort() {
  open_.clear();
  for (const std::string& name : created_) unlink(Where(name).c_str());
  created_.clear();
  // Only while empty: nothing of anyone else's.
  for (const std::string& d : made_dirs_) {
    if (rmdir(d.c_str()) != 0) break;
  }
  made_dirs_.clear();
}

}  // namespace roam
