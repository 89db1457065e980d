// eventfd, timerfd and signalfd: small anonymous-inode files whose whole
// state is in /proc/PID/fdinfo (counter; clock, remaining time, interval
// and expirations not yet read; signal mask).
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <csignal>

#include "ckpt/files.h"

#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif

namespace roam {

Status DumpAnon(const FdSource& src, pb::FileDesc* desc) {
  const FdInfo& i = src.info;
  if (src.link == "anon_inode:[eventfd]") {
    if (!i.eventfd_count) return Status::Error("eventfd without a count in fdinfo");
    desc->set_kind(pb::FILE_EVENTFD);
    desc->set_eventfd_count(*i.eventfd_count);
    desc->set_semaphore(i.eventfd_semaphore);
  } else if (src.link == "anon_inode:[timerfd]") {
    if (!i.is_timerfd) return Status::Error("timerfd without its clock in fdinfo");
    desc->set_kind(pb::FILE_TIMERFD);
    desc->set_clockid(i.timerfd_clockid);
    desc->set_ticks(i.timerfd_ticks);
    desc->set_settime_flags(i.timerfd_settime_flags);
    desc->set_value_ns(i.timerfd_value_ns);
    desc->set_interval_ns(i.timerfd_interval_ns);
  } else {
    if (!i.signalfd_sigmask) return Status::Error("signalfd without a mask in fdinfo");
    desc->set_kind(pb::FILE_SIGNALFD);
    desc->set_signalfd_mask(*i.signalfd_sigmask);
  }
  return Status::Ok();
}

namespace {

timespec Ts(int64_t ns) { return timespec{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)}; }

}  // namespace

Result<int> OpenAnon(const pb::FileDesc& desc) {
  bool nonblock = (desc.flags() & O_NONBLOCK) != 0;
  int fd = -1;
  if (desc.kind() == pb::FILE_EVENTFD) {
    fd = eventfd(0, EFD_CLOEXEC | (nonblock ? EFD_NONBLOCK : 0) | (desc.semaphore() ? EFD_SEMAPHORE : 0));
    if (fd < 0) return Status::Errno("eventfd");
    uint64_t count = desc.eventfd_count();
    if (count > 0 && write(fd, &count, sizeof(count)) != sizeof(count)) {
      close(fd);
      return Status::Errno("eventfd: set counter");
    }
    return fd;
  }
  if (desc.kind() == pb::FILE_TIMERFD) {
    fd = timerfd_create(desc.clockid(), TFD_CLOEXEC | (nonblock ? TFD_NONBLOCK : 0));
    if (fd < 0) return Status::Errno("timerfd_create clock " + std::to_string(desc.clockid()));
    itimerspec its{Ts(desc.interval_ns()), Ts(desc.value_ns())};
    // fdinfo shows the time left; an armed periodic timer caught at its
    // expiry shows 0 left: it fires again one interval later.
    if (desc.value_ns() == 0 && desc.interval_ns() != 0) its.it_value = its.it_interval;
    if ((its.it_value.tv_sec != 0 || its.it_value.tv_nsec != 0) && timerfd_settime(fd, 0, &its, nullptr) != 0) {
      close(fd);
      return Status::Errno("timerfd_settime");
    }
    uint64_t ticks = desc.ticks();
    if (ticks > 0 && ioctl(fd, TFD_IOC_SET_TICKS, &ticks) != 0) {
      close(fd);
      return Status::Errno("timerfd: set pending expirations");
    }
    return fd;
  }
  sigset_t mask;
  sigemptyset(&mask);
  for (int s = 1; s <= 64; ++s) {
    if (desc.signalfd_mask() & (uint64_t{1} << (s - 1))) sigaddset(&mask, s);
  }
  fd = signalfd(-1, &mask, SFD_CLOEXEC | (nonblock ? SFD_NONBLOCK : 0));
  if (fd < 0) return Status::Errno("signalfd");
  return fd;
}

}  // namespace roam
