// epoll sets. Each registration names its target by fd number in the
// process that made it, so the set is filled by its owner (the first
// process of the tree holding it) once that process's fds sit at their
// numbers again.
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

Status RegisterEpollTargets(const pb::FileTable& table, const pb::ProcessImage& proc, const OpenedFiles& opened) {
  for (const pb::FileDesc& d : table.files()) {
    if (d.kind() != pb::FILE_EPOLL || d.owner_pid() != proc.pid()) continue;
    int epfd = -1;
    for (const pb::Fd& f : proc.fds()) {
      if (f.file_id() == d.id()) epfd = f.fd();
    }
    if (epfd < 0) return Status::Error("epoll file " + std::to_string(d.id()) + " is not among its owner's fds");
    for (const pb::EpollTarget& t : d.epoll()) {
      epoll_event ev{};
      ev.events = t.events();
      ev.data.u64 = t.data();
      if (epoll_ctl(epfd, EPOLL_CTL_ADD, t.tfd(), &ev) != 0) {
        return Status::Errno("epoll_ctl add fd " + std::to_string(t.tfd()) + " to fd " + std::to_string(epfd));
      }
    }
  }
  return Status::Ok();
}

}  // namespace roam
