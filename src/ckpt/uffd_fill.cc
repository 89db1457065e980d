#include "ckpt/uffd_fill.h"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "ckpt/tracee.h"

namespace roam {

namespace {
constexpr uint64_t kMaxCopy = 256ULL << 20;  // per ioctl: a fatal signal is seen between calls
}

UffdFill::UffdFill(UffdFill&& o) noexcept { *this = std::move(o); }

UffdFill& UffdFill::operator=(UffdFill&& o) noexcept {
  if (this == &o) return *this;
  (void)Close();
  uffd_ = std::move(o.uffd_);
  map_ = std::exchange(o.map_, nullptr);
  map_len_ = std::exchange(o.map_len_, 0);
  registered_ = std::move(o.registered_);
  return *this;
}

UffdFill::~UffdFill() { (void)Close(); }

Result<UffdFill> UffdFill::Open(Tracee& t, int pages_fd) {
  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, t.tgid(), 0)));
  if (!pidfd.ok()) return Status::Errno("pidfd_open " + std::to_string(t.tgid()));
  UniqueFd pages(static_cast<int>(syscall(SYS_pidfd_getfd, pidfd.get(), pages_fd, 0)));
  if (!pages.ok()) return Status::Errno("pidfd_getfd of the page file");
  struct stat st;
  if (fstat(pages.get(), &st) != 0) return Status::Errno("fstat the page file");
  UffdFill f;
  f.map_len_ = static_cast<uint64_t>(st.st_size);
  if (f.map_len_ > 0) {
    void* m = mmap(nullptr, f.map_len_, PROT_READ, MAP_SHARED, pages.get(), 0);
    if (m == MAP_FAILED) return Status::Errno("map the page file");
    f.map_ = static_cast<const char*>(m);
  }
  // Made by the seed, for its memory; taken here, then closed there (ours
  // keeps it, and the registrations, alive).
  Result<long> remote = t.Syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
  if (!remote.ok()) return remote.status();
  if (*remote < 0) return Status::Errno("userfaultfd in the seed", static_cast<int>(-*remote));
  f.uffd_.reset(static_cast<int>(syscall(SYS_pidfd_getfd, pidfd.get(), static_cast<int>(*remote), 0)));
  const int err = errno;
  (void)t.Syscall(SYS_close, static_cast<uint64_t>(*remote));
  if (!f.uffd_.ok()) return Status::Errno("pidfd_getfd of the seed's userfaultfd", err);
  uffdio_api api{};
  api.api = UFFD_API;
  if (ioctl(f.uffd_.get(), UFFDIO_API, &api) != 0) return Status::Errno("UFFDIO_API");
  return f;
}

bool UffdFill::Register(uint64_t start, uint64_t end) {
  if (!uffd_.ok()) return false;
  uffdio_register reg{};
  reg.range = {start, end - start};
  reg.mode = UFFDIO_REGISTER_MODE_MISSING;
  if (ioctl(uffd_.get(), UFFDIO_REGISTER, &reg) != 0 || !(reg.ioctls & (1ULL << _UFFDIO_COPY))) return false;
  registered_.emplace_back(start, end);
  return true;
}

uint64_t UffdFill::Copy(uint64_t vaddr, uint64_t len, uint64_t offset) {
  if (!uffd_.ok() || offset > map_len_ || len > map_len_ - offset) return 0;
  uint64_t done = 0;
  while (done < len) {
    uffdio_copy c{};
    c.dst = vaddr + done;
    c.src = reinterpret_cast<uint64_t>(map_ + offset + done);
    c.len = std::min(len - done, kMaxCopy);
    if (ioctl(uffd_.get(), UFFDIO_COPY, &c) == 0) {
      done += c.len;
      continue;
    }
    // Part of it went in (then EAGAIN: go on from there), or nothing could
    // (EEXIST: a page is there already; the rest is the caller's).
    if (c.copy > 0) done += static_cast<uint64_t>(c.copy);
    if (errno != EAGAIN || c.copy <= 0) break;
  }
  return done;
}

Status UffdFill::Close() {
  Status st;
  for (const auto& [start, end] : registered_) {
    uffdio_range r{start, end - start};
    if (ioctl(uffd_.get(), UFFDIO_UNREGISTER, &r) != 0 && st.ok()) st = Status::Errno("UFFDIO_UNREGISTER");
  }
  registered_.clear();
  uffd_.reset();
  if (map_ != nullptr) munmap(const_cast<char*>(map_), map_len_);
  map_ = nullptr;
  map_len_ = 0;
  return st;
}

}  // namespace roam
