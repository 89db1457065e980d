#include "ckpt/file_locks.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/syscall.h>

#include <cerrno>
#include <cstdlib>
#include <sstream>

#include "ckpt/tracee.h"

namespace roam {

namespace {

constexpr int kOfdSetLk = 37;  // F_OFD_SETLK, newer than some headers

bool ToU64(const std::string& word, uint64_t* out) {
  if (word.empty()) return false;
  char* end = nullptr;
  errno = 0;
  *out = strtoull(word.c_str(), &end, 10);
  return errno == 0 && *end == '\0';
}

std::string Describe(const pb::FileLock& l) {
  const char* kind = l.kind() == pb::FileLock::FLOCK ? "flock" : l.kind() == pb::FileLock::POSIX ? "POSIX" : "OFD";
  std::string what = std::string(kind) + (l.write() ? " write" : " read") + " lock on fd " + std::to_string(l.fd());
  if (l.kind() != pb::FileLock::FLOCK) {
    what += " (bytes " + std::to_string(l.start()) + "-" +
            (l.length() == 0 ? std::string("end") : std::to_string(l.start() + l.length() - 1)) + ")";
  }
  return what;
}

// One lock, taken (F_WRLCK/F_RDLCK, LOCK_EX/LOCK_SH) or let go.
Result<long> Apply(Tracee& t, uint64_t scratch, const pb::FileLock& l, bool take) {
  const uint64_t fd = static_cast<uint64_t>(l.fd());
  if (l.kind() == pb::FileLock::FLOCK) {
    const int op = take ? ((l.write() ? LOCK_EX : LOCK_SH) | LOCK_NB) : LOCK_UN;
    return t.Syscall(SYS_flock, fd, static_cast<uint64_t>(op));
  }
  struct flock fl {};
  fl.l_type = static_cast<short>(take ? (l.write() ? F_WRLCK : F_RDLCK) : F_UNLCK);
  fl.l_whence = SEEK_SET;
  fl.l_start = static_cast<off_t>(l.start());
  fl.l_len = static_cast<off_t>(l.length());
  Status st = t.WriteMemory(scratch, &fl, sizeof(fl));
  if (!st.ok()) return st;
  const uint64_t cmd = l.kind() == pb::FileLock::OFD ? kOfdSetLk : F_SETLK;
  return t.Syscall(SYS_fcntl, fd, cmd, scratch);
}

}  // namespace

Result<pb::FileLock> ParseLockLine(const std::string& value) {
  std::istringstream in(value);
  std::string id, kind, mode, rw, pid, dev_ino, start, end;
  if (!(in >> id >> kind >> mode >> rw >> pid >> dev_ino >> start >> end) || id.empty() || id.back() != ':') {
    return Status::Error("a file lock line that cannot be read: '" + value + "'");
  }
  pb::FileLock l;
  if (kind == "FLOCK") {
    l.set_kind(pb::FileLock::FLOCK);
  } else if (kind == "POSIX") {
    l.set_kind(pb::FileLock::POSIX);
  } else if (kind == "OFDLCK") {
    l.set_kind(pb::FileLock::OFD);
  } else {
    return Status::Error(StatusCode::kCantMove, "a file lease or delegation (" + kind + ") is not supported");
  }
  if (mode != "ADVISORY") return Status::Error(StatusCode::kCantMove, "a " + mode + " file lock is not supported");
  if (rw != "READ" && rw != "WRITE")
    return Status::Error("a file lock that is neither read nor write: '" + value + "'");
  l.set_write(rw == "WRITE");
  uint64_t first = 0, last = 0;
  if (!ToU64(start, &first) || (end != "EOF" && (!ToU64(end, &last) || last < first))) {
    return Status::Error("a file lock with a range that cannot be read: '" + value + "'");
  }
  if (l.kind() != pb::FileLock::FLOCK) {
    l.set_start(first);
    l.set_length(end == "EOF" ? 0 : last - first + 1);
  }
  return l;
}

Status ReleaseLocks(Tracee& t, uint64_t scratch, const std::vector<pb::FileLock>& locks) {
  for (const pb::FileLock& l : locks) {
    Result<long> r = Apply(t, scratch, l, /*take=*/false);
    if (!r.ok()) return r.status();
    if (*r < 0)
      return Status::Errno("pid " + std::to_string(t.pid()) + ": let go of its " + Describe(l), static_cast<int>(-*r));
  }
  return Status::Ok();
}

Status TakeLocks(Tracee& t, uint64_t scratch, const std::vector<pb::FileLock>& locks) {
  for (const pb::FileLock& l : locks) {
    Result<long> r = Apply(t, scratch, l, /*take=*/true);
    if (!r.ok()) return r.status();
    if (*r == -EAGAIN || *r == -EACCES || *r == -EWOULDBLOCK) {
      return Status::Error(StatusCode::kBusy, "pid " + std::to_string(t.pid()) + ": its " + Describe(l) +
                                                  " is held by another process now");
    }
    if (*r < 0)
      return Status::Errno("pid " + std::to_string(t.pid()) + ": take its " + Describe(l), static_cast<int>(-*r));
  }
  return Status::Ok();
}

}  // namespace roam
