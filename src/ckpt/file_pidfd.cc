// pidfds (pidfd_open, clone's CLONE_PIDFD): a handle on a process that a
// program polls, waits on (waitid P_PIDFD) and signals (pidfd_send_signal).
// Go's os/exec holds one for each child it runs; Python's asyncio and
// libuv-style loops watch their children through them in epoll.
//
// All the file holds is the process it names (fdinfo's "Pid:", -1 once that
// process has ended and been reaped) and its flags (O_NONBLOCK, O_EXCL for
// PIDFD_THREAD). The PIDs of a tree are the same after a restore, so:
// - the root seed opens each pidfd description as one of a process that
//   has ended and been reaped (a child it forks and reaps at once: what a
//   pidfd of a reaped process is), which is all a description of -1 needs;
// - each seed, before its fds go to their numbers, replaces its own copy
//   of every pidfd it holds with a pidfd of the recorded PID (RenewPidfds),
//   so that its fds and the epoll sets it fills hold that one. Seeds are
//   made concurrently, none waiting for another to be ready, so a process
//   not made yet (a sibling, a nephew) soon is: the seed waits for it.
// Threads other than a process's first are made later, by the restorer,
// once every seed is ready: a pidfd of one is refused, as is one of a
// process outside the tree. Each holder gets a description of its own
// (they share only O_NONBLOCK).
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>

#include "ckpt/files.h"
#include "common/file_util.h"
#include "common/proc_status.h"

namespace roam {

namespace {

// O_EXCL in a pidfd's flags is PIDFD_THREAD (Linux 6.9); O_NONBLOCK is
// PIDFD_NONBLOCK.
constexpr uint32_t kPidfdOpenFlags = O_NONBLOCK | O_EXCL;
// How long a seed waits for the process its pidfd names to be made.
constexpr int kWaitMs = 10000;

// Tgid and PPid of `pid`, a zombie too.
Result<ProcLineage> LineageOf(pid_t pid) {
  Result<std::string> text = ReadFile("/proc/" + std::to_string(pid) + "/status");
  if (!text.ok()) return text.status();
  return ParseProcLineage(*text);
}

}  // namespace

Status DumpPidfd(const FileTableBuilder& b, const FdSource& src, pb::FileDesc* desc) {
  if (!src.info.pidfd_pid) return Status::Error("pidfd without a Pid line in fdinfo");
  const pid_t target = *src.info.pidfd_pid;
  desc->set_kind(pb::FILE_PIDFD);
  desc->set_pidfd_pid(target);
  if (target == -1 || b.InTree(target)) return Status::Ok();
  auto refuse = [&](const std::string& what) {
    return Status::Error(StatusCode::kCantMove,
                         "a pidfd of pid " + std::to_string(target) + ", " + what + ", is not supported");
  };
  if (target == 0) return refuse("a process of another PID namespace");
  Result<ProcLineage> t = LineageOf(target);
  if (!t.ok()) return refuse("which could not be read (" + t.status().message() + ")");
  if (t->tgid != target) return refuse("a thread of process " + std::to_string(t->tgid));
  if (b.InTree(t->ppid)) return Status::Ok();  // a zombie of the tree
  return refuse("a process outside the tree");
}

Result<int> OpenPidfd(const pb::FileDesc& desc) {
  const pid_t child = vfork();
  if (child == 0) _exit(0);
  if (child < 0) return Status::Errno("fork for a pidfd");
  const int fd = static_cast<int>(syscall(SYS_pidfd_open, child, desc.flags() & kPidfdOpenFlags));
  const int err = errno;
  waitpid(child, nullptr, 0);
  if (fd < 0) return Status::Errno("pidfd_open", err);
  return fd;
}

Status RenewPidfds(const pb::FileTable& table, const pb::ProcessImage& proc, const OpenedFiles& opened) {
  std::set<uint32_t> done;
  for (const pb::Fd& f : proc.fds()) {
    if (f.file_id() == 0 || f.file_id() > static_cast<uint32_t>(table.files_size())) continue;
    const pb::FileDesc& d = table.files(static_cast<int>(f.file_id() - 1));
    if (d.kind() != pb::FILE_PIDFD || d.pidfd_pid() == -1 || !done.insert(d.id()).second) continue;
    int fd = -1;
    for (int waited_ms = 0;; ++waited_ms) {
      fd = static_cast<int>(syscall(SYS_pidfd_open, d.pidfd_pid(), d.flags() & kPidfdOpenFlags));
      if (fd >= 0 || errno != ESRCH || waited_ms == kWaitMs) break;
      usleep(1000);  // another seed is making it
    }
    if (fd < 0)
      return Status::Errno("fd " + std::to_string(f.fd()) + ": pidfd_open pid " + std::to_string(d.pidfd_pid()));
    const int planned = opened.FdOf(d.id());
    const bool placed = planned >= 0 && dup3(fd, planned, O_CLOEXEC) == planned;
    const int err = errno;
    close(fd);
    if (!placed) return Status::Errno("fd " + std::to_string(f.fd()) + ": place the pidfd", planned < 0 ? EBADF : err);
  }
  return Status::Ok();
}

}  // namespace roam
