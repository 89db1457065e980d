// Files reopened by path: regular files (a file deleted while open travels
// in the image and is recreated, opened and unlinked again), directories,
// character devices (/dev/null, /dev/zero, /dev/urandom ...). Terminals are
// file_terminal.cc's.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <set>
#include <string>
#include <vector>

#include "ckpt/files.h"
#include "ckpt/image.h"
#include "ckpt/image_file.h"
#include "common/file_util.h"
#include "common/proc_maps.h"

namespace roam {

namespace {

constexpr const char kDeletedSuffix[] = " (deleted)";

Status SaveContent(FileTableBuilder& b, const FdSource& src, pb::FileDesc* desc) {
  int in = open(src.proc_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return Status::Errno("open " + src.proc_path + " to save the deleted file");
  std::string name = "content-" + std::to_string(desc->id()) + ".img";
  PayloadFileWriter out;
  Status st = out.Open(b.sink(), name, ImageFileKind::kContent);
  std::vector<char> buf(1 << 20);
  while (st.ok()) {
    ssize_t n = read(in, buf.data(), buf.size());
    if (n < 0) st = Status::Errno("read " + src.proc_path);
    if (n <= 0) break;
    Result<uint64_t> r = out.Append(buf.data(), static_cast<size_t>(n));
    if (!r.ok()) st = r.status();
  }
  close(in);
  if (!st.ok()) return st;
  Result<ImageFileHeader> h = out.Finish();
  if (!h.ok()) return h.status();
  pb::ImageFileSum sum;
  sum.set_name(name);
  sum.set_size(h->header_size + h->payload_size);
  sum.set_xxh3(h->payload_xxh3);
  b.sums.push_back(sum);
  desc->set_content_file(name);
  return Status::Ok();
}

}  // namespace

Status DumpRegular(FileTableBuilder& b, const FdSource& src, pb::FileDesc* desc) {
  std::string path = src.link;
  bool deleted = false;
  if (LinkDeleted(path) && src.st.st_nlink > 0 && S_ISREG(src.st.st_mode)) {
    // Opened or mapped under a name since removed, the object still there
    // under another: a named semaphore (PosixShmPath).
    std::string shm = PosixShmPath(path.substr(0, path.size() - (sizeof(kDeletedSuffix) - 1)), true,
                                   FileId(src.st.st_dev, src.st.st_ino));
    if (!shm.empty()) path = shm;
  }
  if (LinkDeleted(path) && src.st.st_nlink == 0) {
    deleted = true;
    path.resize(path.size() - (sizeof(kDeletedSuffix) - 1));
  }
  desc->set_path(path);
  const struct stat& st = src.st;
  if (S_ISREG(st.st_mode)) {
    desc->set_kind(pb::FILE_REGULAR);
    desc->set_size(static_cast<uint64_t>(st.st_size));
    desc->set_mode(st.st_mode & 07777);
    const bool carried = !deleted && CarriedWithProcess(path);
    if (deleted || carried) {
      desc->set_deleted(deleted);
      desc->set_carried(carried);
      desc->set_uid(st.st_uid);
      desc->set_gid(st.st_gid);
      auto key = std::make_pair(src.st.st_dev, src.st.st_ino);
      auto it = b.deleted_contents.find(key);
      if (it != b.deleted_contents.end()) {
        desc->set_content_file(it->second);
        return Status::Ok();
      }
      Status st = SaveContent(b, src, desc);
      if (st.ok()) b.deleted_contents[key] = desc->content_file();
      return st;
    }
    return Status::Ok();
  }
  if (deleted && (S_ISDIR(st.st_mode) || S_ISFIFO(st.st_mode))) {
    // Made again empty (a removed directory was; a FIFO's bytes are the
    // Pipe record's), with its owner and mode, and removed again.
    desc->set_deleted(true);
    desc->set_mode(st.st_mode & 07777);
    desc->set_uid(st.st_uid);
    desc->set_gid(st.st_gid);
  } else if (deleted) {
    return Status::Error(StatusCode::kCantMove, path + ": a deleted device or socket file is not supported");
  }
  if (S_ISDIR(st.st_mode)) {
    desc->set_kind(pb::FILE_DIRECTORY);
    return Status::Ok();
  }
  if (S_ISCHR(st.st_mode)) {
    if (IsTerminal(st)) {
      int tty_nr = 0;  // what /dev/tty names: the process's controlling terminal
      if (st.st_rdev == makedev(5, 0)) {
        Result<std::string> stat = ReadFile("/proc/" + std::to_string(src.pid) + "/stat");
        ProcStat ps;
        if (stat.ok() && ParseProcStat(*stat, &ps)) tty_nr = ps.tty_nr;
      }
      return DumpTerminal(b, src, tty_nr, desc);
    }
    desc->set_kind(pb::FILE_CHARDEV);
    return Status::Ok();
  }
  if (S_ISFIFO(st.st_mode)) {
    desc->set_kind(pb::FILE_FIFO);
    desc->set_pipe_ino(st.st_ino);
    return Status::Ok();
  }
  return Status::Error(StatusCode::kCantMove, path + ": this kind of file (block device or socket) is not supported");
}

std::string DeletedKey(const pb::FileDesc& desc) {
  if (desc.kind() == pb::FILE_FIFO) return "fifo " + std::to_string(desc.pipe_ino());
  if (desc.kind() == pb::FILE_DIRECTORY) return "directory " + desc.path();
  return desc.content_file();
}

namespace {

// A deleted FIFO or directory made again, empty, under its old name or
// beside it; returns where.
Result<std::string> RecreateNode(const pb::FileDesc& desc) {
  std::string path = desc.path();
  if (access(path.c_str(), F_OK) == 0) path += ".roam-restore-" + std::to_string(getpid());
  const bool dir = desc.kind() == pb::FILE_DIRECTORY;
  if ((dir ? mkdir(path.c_str(), 0700) : mkfifo(path.c_str(), 0600)) != 0) return Status::Errno("recreate deleted " + path);
  Status st;
  if (lchown(path.c_str(), desc.uid(), desc.gid()) != 0) st = Status::Errno("give " + path + " its owner");
  if (st.ok() && chmod(path.c_str(), desc.mode() & 07777) != 0) st = Status::Errno("chmod " + path);
  if (!st.ok()) {
    remove(path.c_str());
    return st;
  }
  return path;
}

}  // namespace

namespace {

// Copies the payload of `content` (an image's content file) into `out`.
Status CopyContent(const std::string& content, int out, const std::string& path) {
  int in = open(content.c_str(), O_RDONLY | O_CLOEXEC);
  Status st = in < 0 ? Status::Errno("open " + content) : Status::Ok();
  std::vector<char> buf(1 << 20);
  off_t off = kPageHeaderSize;
  while (st.ok()) {
    ssize_t n = pread(in, buf.data(), buf.size(), off);
    if (n < 0) st = Status::Errno("read " + content);
    if (n <= 0) break;
    if (write(out, buf.data(), static_cast<size_t>(n)) != n) st = Status::Errno("write " + path);
    off += n;
  }
  if (in >= 0) close(in);
  return st;
}

}  // namespace

std::string PosixShmPath(const std::string& path, bool deleted, FileId id) {
  if (!IsPosixSharedMemory(path)) return "";
  if (!deleted) return path;
  std::string found;
  if (DIR* dir = opendir("/dev/shm")) {
    while (dirent* e = readdir(dir)) {
      struct stat st;
      if (e->d_name[0] == '.' || e->d_ino != id.second) continue;
      if (fstatat(dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
          FileId(st.st_dev, st.st_ino) == id) {
        found = std::string("/dev/shm/") + e->d_name;
        break;
      }
    }
    closedir(dir);
  }
  return found;
}

void PosixShmOf(pid_t pid, std::map<FileId, std::string>* out, const std::string* maps) {
  const std::string proc = "/proc/" + std::to_string(pid);
  if (DIR* fds = opendir((proc + "/fd").c_str())) {
    while (dirent* e = readdir(fds)) {
      char link[4096];
      ssize_t n = readlinkat(dirfd(fds), e->d_name, link, sizeof(link) - 1);
      std::string path(link, n > 0 ? static_cast<size_t>(n) : 0);
      struct stat st;
      if (path.rfind("/dev/shm/", 0) != 0 || fstatat(dirfd(fds), e->d_name, &st, 0) != 0) continue;
      const bool deleted = LinkDeleted(path);
      if (deleted) path.resize(path.size() - (sizeof(kDeletedSuffix) - 1));
      const FileId id(st.st_dev, st.st_ino);
      std::string name = PosixShmPath(path, deleted, id);
      if (!name.empty()) (*out)[id] = name;
    }
    closedir(fds);
  }
  Result<std::string> read = Status::Error("not read");
  if (maps == nullptr) {
    read = ReadFile(proc + "/maps");
    if (!read.ok()) return;
    maps = &*read;
  }
  if (maps->find(" /dev/shm/") == std::string::npos) return;  // the common case: parsed only when there is one
  Result<std::vector<VmaInfo>> vmas = ParseMaps(*maps);
  if (!vmas.ok()) return;
  for (const VmaInfo& v : *vmas) {
    if (v.path.rfind("/dev/shm/", 0) != 0) continue;
    const FileId id(makedev(v.dev_major, v.dev_minor), v.inode);
    if (out->count(id)) continue;
    std::string name = PosixShmPath(v.path, v.deleted, id);
    if (!name.empty()) (*out)[id] = name;
  }
}

pid_t SharedMemoryHolderOutside(const std::map<FileId, std::string>& objects, const std::set<pid_t>& tree,
                                std::string* held) {
  return FirstProcessOutside(tree, [&](pid_t pid) {
    std::map<FileId, std::string> has;
    PosixShmOf(pid, &has);
    for (const auto& [id, path] : has) {
      auto it = objects.find(id);
      if (it == objects.end()) continue;
      if (held != nullptr) *held = it->second;
      return true;
    }
    return false;
  });
}

Status CheckCarriedNotShared(const pb::FileTable& table, const std::set<pid_t>& tree) {
  std::map<FileId, std::string> objects;
  for (const pb::FileDesc& d : table.files()) {
    struct stat st;
    if (d.carried() && IsPosixSharedMemory(d.path()) && stat(d.path().c_str(), &st) == 0) {
      objects[FileId(st.st_dev, st.st_ino)] = d.path();
    }
  }
  if (objects.empty()) return Status::Ok();
  std::string held;
  const pid_t holder = SharedMemoryHolderOutside(objects, tree, &held);
  if (holder < 0) return Status::Errno("read /proc");
  if (holder == 0) return Status::Ok();
  Result<std::string> comm = ReadFile("/proc/" + std::to_string(holder) + "/comm");
  const std::string name = comm.ok() ? " (" + comm->substr(0, comm->find('\n')) + ")" : "";
  return Status::Error(StatusCode::kCantMove, held + " is shared with pid " + std::to_string(holder) + name +
                                                  ", outside the tree: one object cannot be in two places");
}

Status PlaceCarried(const pb::FileDesc& desc, const std::string& image_dir) {
  const std::string& path = desc.path();
  const std::string dir = path.substr(0, path.rfind('/'));
  const std::string name = path.substr(path.rfind('/') + 1);
  const bool shm = IsPosixSharedMemory(path);
  // Written as root in a directory others may write: opened without
  // following a link, it must be the file's owner's alone (as the JVM
  // asks of its own) or root's with the sticky bit (/dev/shm), where
  // nobody can swap a file of another user in.
  int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0 && errno == ENOENT && !shm) {
    // As the JVM makes it: 0755, its user's.
    if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return Status::Errno("make " + dir);
    dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd >= 0 && geteuid() == 0 && fchown(dfd, desc.uid(), desc.gid()) != 0) {
      close(dfd);
      return Status::Errno("give " + dir + " its owner");
    }
  }
  if (dfd < 0) return Status::Errno("open " + dir + " (a directory, not a link)");
  struct stat st;
  Status s = fstat(dfd, &st) != 0 ? Status::Errno("fstat " + dir) : Status::Ok();
  const bool owners = st.st_uid == desc.uid() && (st.st_mode & 022) == 0;
  const bool sticky = st.st_uid == 0 && (st.st_mode & S_ISVTX) != 0;
  if (s.ok() && !owners && !sticky) {
    s = Status::Error(dir + " is neither " + std::to_string(desc.uid()) +
                      "'s alone nor sticky: its carried file is not written there");
  }
  int out = -1;
  if (s.ok()) {
    out = openat(dfd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, desc.mode() & 07777);
    if (out < 0 && errno == EEXIST) {
      // Left there by the process (roam checkpoint killed it; the object
      // stays): its owner's own regular file gets the image's contents.
      out = openat(dfd, name.c_str(), O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
      struct stat there;
      if (out >= 0 && (fstat(out, &there) != 0 || !S_ISREG(there.st_mode) || there.st_uid != desc.uid())) {
        close(out);
        out = -1;
        s = Status::Error(path + " exists and is not " + std::to_string(desc.uid()) +
                          "'s regular file: the carried file is not written over it");
      } else if (out >= 0 && ftruncate(out, 0) != 0) {
        s = Status::Errno("truncate " + path);
      }
    }
    if (s.ok() && out < 0) s = Status::Errno("write the carried file " + path);
  }
  close(dfd);
  if (!s.ok()) {
    if (out >= 0) close(out);
    return s;
  }
  s = CopyContent(image_dir + "/" + desc.content_file(), out, path);
  if (s.ok() && geteuid() == 0 && fchown(out, desc.uid(), desc.gid()) != 0) s = Status::Errno("give " + path + " its owner");
  if (s.ok() && fchmod(out, desc.mode() & 07777) != 0) s = Status::Errno("chmod " + path);
  close(out);
  return s;
}

Result<std::string> RecreateDeleted(const pb::FileDesc& desc, const std::string& image_dir) {
  if (desc.kind() == pb::FILE_FIFO || desc.kind() == pb::FILE_DIRECTORY) return RecreateNode(desc);
  std::string path = desc.path();
  if (access(path.c_str(), F_OK) == 0) path += ".roam-restore-" + std::to_string(getpid());
  int out = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, desc.mode() & 07777);
  if (out < 0) return Status::Errno("recreate deleted file " + path);
  Status st = CopyContent(image_dir + "/" + desc.content_file(), out, path);
  // Its owner, then its exact mode (the umask took bits; chown drops set-id bits).
  struct stat now;
  if (st.ok() && fstat(out, &now) != 0) st = Status::Errno("fstat " + path);
  if (st.ok() && (now.st_uid != desc.uid() || now.st_gid != desc.gid()) && fchown(out, desc.uid(), desc.gid()) != 0) {
    st = Status::Errno("give the deleted file " + desc.path() + " its owner " + std::to_string(desc.uid()) + ":" +
                       std::to_string(desc.gid()));
  }
  if (st.ok() && fchmod(out, desc.mode() & 07777) != 0) st = Status::Errno("chmod " + path);
  close(out);
  if (!st.ok()) {
    unlink(path.c_str());
    return st;
  }
  return path;
}

Result<int> OpenRegular(const pb::FileDesc& desc, const std::string& recreated) {
  int flags = static_cast<int>(desc.flags()) & ~(O_CREAT | O_EXCL | O_TRUNC);
  // A file made with O_TMPFILE (Python's tempfile.TemporaryFile) keeps
  // that flag, which names a directory to make a file in: it is opened by
  // its path here, as a file.
  if (desc.kind() == pb::FILE_REGULAR) flags &= ~O_TMPFILE;
  flags |= O_CLOEXEC | O_NOCTTY;
  std::string path = desc.deleted() ? recreated : desc.path();
  if (path.empty()) return Status::Error(desc.path() + ": deleted file not recreated");
  int fd = open(path.c_str(), flags);
  int err = errno;
  if (fd < 0) return Status::Errno("open " + path, err);
  if ((desc.kind() == pb::FILE_REGULAR || desc.kind() == pb::FILE_DIRECTORY) && desc.pos() != 0) {
    if (lseek(fd, static_cast<off_t>(desc.pos()), SEEK_SET) < 0) {
      err = errno;
      close(fd);
      return Status::Errno("seek " + path, err);
    }
  }
  return fd;
}

}  // namespace roam
