// inotify instances. A watch is dumped as the path of its inode, found from
// the file handle in fdinfo; at restore the watch descriptors get their old
// numbers back by adding and removing watches until the kernel's counter
// reaches each one (it hands them out in increasing order). Events queued
// at dump time are not carried over.
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "ckpt/files.h"
#include "common/file_util.h"

namespace roam {

namespace {

// An fd on the root of the mount holding device `sdev` (kernel encoding).
Result<int> OpenMountOf(uint32_t sdev) {
  unsigned maj = sdev >> 20, min = sdev & 0xfffff;
  Result<std::string> info = ReadFile("/proc/self/mountinfo");
  if (!info.ok()) return info.status();
  std::string want = std::to_string(maj) + ":" + std::to_string(min);
  size_t pos = 0;
  while (pos < info->size()) {
    size_t eol = info->find('\n', pos);
    if (eol == std::string::npos) eol = info->size();
    std::string line = info->substr(pos, eol - pos);
    pos = eol + 1;
    char dev[64], root[4096], mnt[4096];
    if (sscanf(line.c_str(), "%*d %*d %63s %4095s %4095s", dev, root, mnt) == 3 && want == dev) {
      int fd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (fd >= 0) return fd;
    }
  }
  return Status::Error("no mount of device " + want);
}

Result<std::string> PathOfHandle(const InotifyWatch& w) {
  Result<int> mnt = OpenMountOf(w.sdev);
  if (!mnt.ok()) return mnt.status();
  std::vector<unsigned char> buf(sizeof(file_handle) + w.f_handle_hex.size() / 2);
  auto* fh = reinterpret_cast<file_handle*>(buf.data());
  fh->handle_bytes = static_cast<unsigned>(w.f_handle_hex.size() / 2);
  fh->handle_type = w.fhandle_type;
  for (size_t i = 0; i < fh->handle_bytes; ++i) {
    fh->f_handle[i] = static_cast<unsigned char>(std::stoi(w.f_handle_hex.substr(2 * i, 2), nullptr, 16));
  }
  int fd = open_by_handle_at(*mnt, fh, O_PATH | O_CLOEXEC);
  int err = errno;
  close(*mnt);
  if (fd < 0) return Status::Errno("open_by_handle_at", err);
  char link[4096];
  ssize_t n = readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), link, sizeof(link) - 1);
  close(fd);
  if (n <= 0) return Status::Error("cannot name the watched file");
  std::string path(link, static_cast<size_t>(n));
  if (LinkDeleted(path)) {
    return Status::Error("watched file " + path + " is deleted");
  }
  return path;
}

}  // namespace

Status DumpInotify(const FdSource& src, pb::FileDesc* desc) {
  desc->set_kind(pb::FILE_INOTIFY);
  for (const InotifyWatch& w : src.info.inotify) {
    Result<std::string> path = PathOfHandle(w);
    if (!path.ok()) return Status::Error("inotify watch " + std::to_string(w.wd) + ": " + path.status().message());
    pb::InotifyWatch* out = desc->add_watches();
    out->set_wd(w.wd);
    out->set_mask(w.mask);
    out->set_path(*path);
  }
  return Status::Ok();
}

Result<int> OpenInotify(const pb::FileDesc& desc) {
  int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (fd < 0) return Status::Errno("inotify_init1");
  std::vector<pb::InotifyWatch> watches(desc.watches().begin(), desc.watches().end());
  std::sort(watches.begin(), watches.end(), [](auto& a, auto& b) { return a.wd() < b.wd(); });
  for (const pb::InotifyWatch& w : watches) {
    uint32_t mask = w.mask() & (IN_ALL_EVENTS | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK);
    for (int tries = 0;; ++tries) {
      int wd = inotify_add_watch(fd, w.path().c_str(), mask);
      if (wd < 0) {
        int err = errno;
        close(fd);
        return Status::Errno("inotify_add_watch " + w.path(), err);
      }
      if (wd == w.wd()) break;
      if (wd > w.wd() || tries > 1000000) {
        close(fd);
        return Status::Error("inotify: cannot get watch descriptor " + std::to_string(w.wd()) + " back");
      }
      inotify_rm_watch(fd, wd);
    }
  }
  // Removing the stepping-stone watches queued IN_IGNORED events: drop them.
  char buf[4096];
  while (read(fd, buf, sizeof(buf)) > 0) {
  }
  if (!(desc.flags() & O_NONBLOCK)) fcntl(fd, F_SETFL, 0);
  return fd;
}

}  // namespace roam
