// memfd: an in-memory file made by memfd_create, held by fds or mapped
// shared. Its contents are a SharedMemory record, like the object behind a
// shared anonymous mapping (memory.cc reads them once, however many fds
// and mappings hold it), which also keeps its name, exact size and seals.
// Each fd is a FileDesc of kind FILE_MEMFD naming that record, with its
// own flags and offset.
//
// Restore: the root seed makes the object with memfd_create (allowing
// seals), writes its contents, sets its size; each description is that
// object opened again through /proc/self/fd with its flags, at its offset.
// Seals come last, once every process has mapped the object
// (MemfdSeals): F_SEAL_WRITE forbids writable shared mappings, so sealing
// first would refuse the mappings a process made before it sealed.
//
// A memfd on hugetlbfs (MFD_HUGETLB) and a private mapping of a memfd are
// refused.
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cstring>

#include "ckpt/files.h"
#include "ckpt/memory.h"

#ifndef F_GET_SEALS
#define F_ADD_SEALS 1033
#define F_GET_SEALS 1034
#endif
#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING 2U
#endif

namespace roam {

namespace {

constexpr char kPrefix[] = "/memfd:";
constexpr char kDeleted[] = " (deleted)";

}  // namespace

bool IsMemfdName(const std::string& path) { return path.rfind(kPrefix, 0) == 0; }

Status DescribeMemfd(const std::string& path, int fd, pb::SharedMemory* shm) {
  char link[4096];
  ssize_t n = readlink(path.c_str(), link, sizeof(link) - 1);
  if (n < 0) return Status::Errno("readlink " + path);
  std::string name(link, static_cast<size_t>(n));
  if (!IsMemfdName(name)) return Status::Ok();  // shared anonymous memory
  struct statfs fs;
  if (fstatfs(fd, &fs) == 0 && fs.f_type == HUGETLBFS_MAGIC) {
    return Status::Error(StatusCode::kCantMove, path + ": a memfd of huge pages (" + name + ") is not supported");
  }
  name = name.substr(strlen(kPrefix));
  const size_t tail = strlen(kDeleted);
  if (name.size() >= tail && name.compare(name.size() - tail, tail, kDeleted) == 0) name.resize(name.size() - tail);
  int seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0) return Status::Errno("F_GET_SEALS " + path);
  shm->set_memfd(true);
  shm->set_memfd_name(name);
  shm->set_seals(static_cast<uint32_t>(seals));
  return Status::Ok();
}

Status DumpMemfd(FileTableBuilder& b, const FdSource& src, pb::FileDesc* desc) {
  MemoryStats stats;
  Status st = DumpSharedObject(src.proc_path, src.st.st_ino, b, &stats);
  if (!st.ok()) return st;
  desc->set_kind(pb::FILE_MEMFD);
  desc->set_shmem_id(src.st.st_ino);
  return Status::Ok();
}

Result<int> MakeMemfd(const pb::SharedMemory& shm) {
  // Its name as the process gave it (memfd_create takes at most 249 bytes).
  int fd = static_cast<int>(memfd_create(shm.memfd_name().substr(0, 249).c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (fd < 0) return Status::Errno("memfd_create " + shm.memfd_name());
  return fd;
}

Result<int> OpenMemfd(const pb::FileDesc& desc, int object_fd) {
  const std::string path = "/proc/self/fd/" + std::to_string(object_fd);
  int fd = open(path.c_str(), static_cast<int>(desc.flags() & ~static_cast<uint32_t>(O_CREAT | O_EXCL | O_TRUNC)) | O_CLOEXEC);
  if (fd < 0) return Status::Errno("reopen memfd " + std::to_string(desc.shmem_id()));
  if (lseek(fd, static_cast<off_t>(desc.pos()), SEEK_SET) < 0) {
    int err = errno;
    close(fd);
    return Status::Errno("seek memfd " + std::to_string(desc.shmem_id()), err);
  }
  return fd;
}

MemfdSeals::~MemfdSeals() {
  for (const auto& [fd, seals] : held_) close(fd);
}

Status MemfdSeals::Hold(const pb::FileTable& table, pid_t root, const OpenedFiles& opened) {
  for (const pb::SharedMemory& s : table.shmems()) {
    if (!s.memfd() || s.seals() == 0) continue;
    const std::string path = "/proc/" + std::to_string(root) + "/fd/" + std::to_string(opened.ShmemFd(s.id()));
    int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return Status::Errno("open memfd " + s.memfd_name() + " (" + path + ")");
    held_.emplace_back(fd, s.seals());
  }
  return Status::Ok();
}

Status MemfdSeals::Apply() {
  for (const auto& [fd, seals] : held_) {
    if (fcntl(fd, F_ADD_SEALS, static_cast<int>(seals)) != 0) return Status::Errno("seal a memfd (seals " + std::to_string(seals) + ")");
  }
  return Status::Ok();
}

}  // namespace roam
