// epoll sets. Each registration names its target by fd number in the
// process that made it, so the set is filled by its owner (the first
// process of the tree holding it) once that process's fds sit at their
// numbers again. The dump finds each target's file with kcmp
// (KCMP_EPOLL_TFD, files.cc), whatever that number holds now.
#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "ckpt/files.h"

namespace roam {

Status DumpEpoll(const FdSource& src, pb::FileDesc* desc) {
  desc->set_kind(pb::FILE_EPOLL);
  for (const EpollTarget& t : src.info.epoll) {
    pb::EpollTarget* e = desc->add_epoll();
    e->set_tfd(t.tfd);
    e->set_events(t.events);
    e->set_data(t.data);
  }
  return Status::Ok();
}

Result<int> OpenEpoll(const pb::FileDesc& desc) {
  int fd = epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) return Status::Errno("epoll_create1");
  return fd;
}

namespace {

// Adds `t` under its own fd number, which is what the kernel keys the
// registration by (and what the process may later name in EPOLL_CTL_MOD
// or DEL). If that number holds another file now, or nothing, the target
// is put there for the call and the fd put back as it was.
Status AddTarget(int epfd, const pb::EpollTarget& t, const pb::ProcessImage& proc, const OpenedFiles& opened) {
  epoll_event ev{};
  ev.events = t.events();
  ev.data.u64 = t.data();
  const int tfd = t.tfd();
  const pb::Fd* now = nullptr;
  for (const pb::Fd& f : proc.fds()) {
    if (f.fd() == tfd) now = &f;
  }
  if (now != nullptr && now->file_id() == t.file_id()) {
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &ev) != 0) {
      return Status::Errno("epoll_ctl add fd " + std::to_string(tfd) + " to fd " + std::to_string(epfd));
    }
    return Status::Ok();
  }
  const int target = opened.FdOf(t.file_id());
  if (target < 0) return Status::Error("epoll target file " + std::to_string(t.file_id()) + " is not open");
  const int saved = now != nullptr ? fcntl(tfd, F_DUPFD_CLOEXEC, opened.next_free()) : -1;
  if (now != nullptr && saved < 0) return Status::Errno("keep fd " + std::to_string(tfd));
  Status st;
  if (dup2(target, tfd) < 0) {
    st = Status::Errno("dup2 the epoll target to fd " + std::to_string(tfd));
  } else if (epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &ev) != 0) {
    st = Status::Errno("epoll_ctl add fd " + std::to_string(tfd) + " (its file then) to fd " + std::to_string(epfd));
  }
  if (saved >= 0) {
    if (dup3(saved, tfd, now->cloexec() ? O_CLOEXEC : 0) < 0 && st.ok()) st = Status::Errno("put fd " + std::to_string(tfd) + " back");
    close(saved);
  } else {
    close(tfd);
  }
  return st;
}

}  // namespace

Status RegisterEpollTargets(const pb::FileTable& table, const pb::ProcessImage& proc, const OpenedFiles& opened) {
  for (const pb::FileDesc& d : table.files()) {
    if (d.kind() != pb::FILE_EPOLL || d.owner_pid() != proc.pid()) continue;
    int epfd = -1;
    for (const pb::Fd& f : proc.fds()) {
      if (f.file_id() == d.id()) epfd = f.fd();
    }
    if (epfd < 0) return Status::Error("epoll file " + std::to_string(d.id()) + " is not among its owner's fds");
    for (const pb::EpollTarget& t : d.epoll()) {
      Status st = AddTarget(epfd, t, proc, opened);
      if (!st.ok()) return st;
    }
  }
  return Status::Ok();
}

}  // namespace roam
