#include "ckpt/page_stage.h"

#include "ckpt/clone_pid.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace roam {

namespace {

constexpr uint64_t kHuge = 2 << 20;
constexpr int kMaxInherited = 60;
constexpr int kStageFd = 3;  // the socket's number in the staged process

enum StageOp : uint32_t { kMap = 1, kBecome = 2 };

// One order on the stage's socket (SOCK_SEQPACKET: one message each).
struct StageOrder {
  uint32_t op = 0;
  uint64_t len = 0;      // kMap: bytes to map
  uint64_t align = 0;    // kMap: the address it stands for (same offset in a 2 MiB page)
  int32_t owner = 0;     // kMap: the process it is for
  int32_t base = 0;      // kBecome
  int32_t count = 0;     // kBecome: inherited fds passed after the ready fd
  int32_t own_session = 0;  // kBecome
  int32_t image_fds[kMaxInherited] = {};
  char dir[2048] = {};
};

struct FdBuffer {
  alignas(cmsghdr) char buf[CMSG_SPACE(sizeof(int) * (kMaxInherited + 1))];
};

// One StageOrder and room for its fds.
msghdr OrderMessage(StageOrder* o, iovec* iov, FdBuffer* fds, size_t control_len) {
  *iov = {o, sizeof(*o)};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = 1;
  msg.msg_control = fds->buf;
  msg.msg_controllen = control_len;
  return msg;
}

// ---- in the staged process ---------------------------------------------------------

[[noreturn]] void StageMain(int sock) {
  // It dies with the thread that made it, and nothing but SIGKILL reaches it.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);
  if (sock != kStageFd && dup3(sock, kStageFd, O_CLOEXEC) < 0) _exit(1);
  syscall(SYS_close_range, 0, kStageFd - 1, 0);
  syscall(SYS_close_range, kStageFd + 1, ~0U, 0);
  std::vector<StagedPiece> staged;  // what it maps, for whom
  for (;;) {
    StageOrder o;
    FdBuffer fdbuf;
    iovec iov;
    msghdr msg = OrderMessage(&o, &iov, &fdbuf, sizeof(fdbuf.buf));
    ssize_t n = recvmsg(kStageFd, &msg, MSG_CMSG_CLOEXEC);
    if (n != static_cast<ssize_t>(sizeof(o))) _exit(0);  // the restorer is gone
    if (o.op == kMap) {
      int64_t reply = 0;
      void* p = mmap(nullptr, o.len + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (p == MAP_FAILED) {
        reply = -errno;
      } else {
        uint64_t lo = reinterpret_cast<uint64_t>(p);
        uint64_t at = lo + ((o.align - lo) & (kHuge - 1));
        if (at > lo) munmap(p, at - lo);
        if (lo + o.len + kHuge > at + o.len) munmap(reinterpret_cast<void*>(at + o.len), lo + o.len + kHuge - (at + o.len));
        reply = static_cast<int64_t>(at);
        staged.push_back({o.align, o.len, at, o.owner, {}});
      }
      if (write(kStageFd, &reply, sizeof(reply)) != sizeof(reply)) _exit(0);
      continue;
    }
    if (o.op != kBecome) _exit(1);
    std::vector<int> fds;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      const int* got = reinterpret_cast<const int*>(CMSG_DATA(c));
      fds.insert(fds.end(), got, got + k);
    }
    if (o.count < 0 || o.count > kMaxInherited || fds.size() != static_cast<size_t>(o.count) + 1) _exit(1);
    close(kStageFd);
    std::vector<std::pair<int, int>> inherited;
    for (int i = 0; i < o.count; ++i) inherited.emplace_back(o.image_fds[i], fds[static_cast<size_t>(i) + 1]);
    o.dir[sizeof(o.dir) - 1] = '\0';
    BecomeStagedSeed(o.dir, o.base, fds[0], inherited, staged, o.own_session != 0);
  }
}

}  // namespace

// ---- in the restorer ---------------------------------------------------------------

Result<std::unique_ptr<PageStage>> PageStage::Create(pid_t pid) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) return Status::Errno("socketpair");
  pid_t got = CloneWithPid(pid);
  if (got == 0) {
    close(sv[0]);
    StageMain(sv[1]);
  }
  int err = errno;
  close(sv[1]);
  if (got < 0) {
    close(sv[0]);
    if (err == EEXIST) return Status::Error("pid " + std::to_string(pid) + " is taken");
    return Status::Errno("clone3 with pid " + std::to_string(pid), err);
  }
  std::unique_ptr<PageStage> stage(new PageStage());
  stage->pid_ = got;
  stage->sock_ = sv[0];
  return stage;
}

std::unique_ptr<PageStage> PageStage::Adopt(pid_t pid, uint64_t at, uint64_t len) {
  std::unique_ptr<PageStage> stage(new PageStage());
  stage->pid_ = pid;
  stage->adopted_ = true;
  stage->reserve_at_ = stage->reserve_next_ = at;
  stage->reserve_end_ = at + len;
  return stage;
}

PageStage::~PageStage() {
  if (sock_ >= 0) close(sock_);
  if (!taken_ && !adopted_ && pid_ > 0) {
    kill(pid_, SIGKILL);
    int status;
    while (waitpid(pid_, &status, __WALL) < 0 && errno == EINTR) {
    }
  }
}

Result<uint64_t> PageStage::MapPiece(pid_t owner, uint64_t vaddr, uint64_t len) {
  if (taken_) return Status::Error("the staged process was handed to a restore");
  if (adopted_) {  // the same offset in a 2 MiB page as `vaddr`, as StageMain maps
    const uint64_t at = reserve_next_ + ((vaddr - reserve_next_) & (kHuge - 1));
    if (at + len > reserve_end_ || at + len < at) {
      return Status::Error("pid " + std::to_string(pid_) + " reserved too little room for its pre-copied memory");
    }
    reserve_next_ = at + len;
    return at;
  }
  StageOrder o;
  o.op = kMap;
  o.len = len;
  o.align = vaddr;
  o.owner = owner;
  if (send(sock_, &o, sizeof(o), MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof(o))) {
    return Status::Errno("stage pid " + std::to_string(pid_));
  }
  int64_t reply = 0;
  if (read(sock_, &reply, sizeof(reply)) != sizeof(reply)) {
    return Status::Error("the staged process " + std::to_string(pid_) + " is gone");
  }
  if (reply < 0) return Status::Errno("staging " + std::to_string(len >> 20) + " MiB", static_cast<int>(-reply));
  return static_cast<uint64_t>(reply);
}

Status PageStage::Write(pid_t owner, uint64_t vaddr, const void* data, size_t len, PageRange piece) {
  if (len == 0) return Status::Ok();
  if (owner == 0) owner = pid_;
  RangeSet& covered = covered_[owner];
  RangeSet want({piece, {vaddr, vaddr + len}});
  want.Remove(covered);
  for (const PageRange& r : want.ranges()) {
    Result<uint64_t> at = MapPiece(owner, r.start, r.bytes());
    if (!at.ok()) return at.status();
    pieces_.push_back({r.start, r.bytes(), *at, owner, {}});
    covered.Add(r);
  }
  for (const StagedPiece& p : pieces_) {
    if (p.pid != owner) continue;
    uint64_t lo = std::max(vaddr, p.vaddr), hi = std::min(vaddr + len, p.vaddr + p.len);
    if (lo >= hi) continue;
    iovec local{const_cast<char*>(static_cast<const char*>(data)) + (lo - vaddr), hi - lo};
    iovec remote{reinterpret_cast<void*>(p.at + (lo - p.vaddr)), hi - lo};
    if (process_vm_writev(pid_, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(hi - lo)) {
      return Status::Errno("write staged pages into pid " + std::to_string(pid_));
    }
  }
  return Status::Ok();
}

Status PageStage::Become(const std::string& dir, int base, int ready_fd,
                         const std::vector<std::pair<int, int>>& inherited, bool own_session) {
  taken_ = true;
  if (inherited.size() > kMaxInherited) return Status::Error("too many inherited fds for a staged restore");
  StageOrder o;
  o.op = kBecome;
  o.base = base;
  o.own_session = own_session ? 1 : 0;
  o.count = static_cast<int32_t>(inherited.size());
  if (dir.size() >= sizeof(o.dir)) return Status::Error("image path too long");
  memcpy(o.dir, dir.data(), dir.size());
  std::vector<int> fds{ready_fd};
  for (size_t i = 0; i < inherited.size(); ++i) {
    o.image_fds[i] = inherited[i].first;
    fds.push_back(inherited[i].second);
  }
  FdBuffer fdbuf;
  iovec iov;
  msghdr msg = OrderMessage(&o, &iov, &fdbuf, CMSG_SPACE(sizeof(int) * fds.size()));
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
  memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  if (sendmsg(sock_, &msg, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof(o))) {
    return Status::Errno("hand the staged process " + std::to_string(pid_) + " its image");
  }
  return Status::Ok();
}

}  // namespace roam
