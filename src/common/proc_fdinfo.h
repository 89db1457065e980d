// /proc/PID/fdinfo/FD: the position and flags of any open file, and the
// state the kernel shows for eventfd, timerfd, signalfd, epoll and inotify
// files, as the checkpoint engine dumps them. Formats are those of Linux
// 6.x (captured from 6.18 in tests/data/proc/). Pure; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace roam {

// One "tfd:" line of an epoll file: a watched file and its registration.
struct EpollTarget {
  int tfd = 0;          // the target's fd number in the owner's table
  uint32_t events = 0;  // EPOLL* bits as registered
  uint64_t data = 0;    // epoll_event.data, opaque
  uint64_t pos = 0;     // the target file's position
  uint64_t ino = 0;     // the target's inode
  uint32_t sdev = 0;    // the target's superblock dev_t, kernel encoding
};

// One "inotify" line: a watch and a file handle for the watched inode.
struct InotifyWatch {
  int wd = 0;
  uint64_t ino = 0;
  uint32_t sdev = 0;  // kernel encoding of dev_t
  uint32_t mask = 0;  // IN_* bits
  uint32_t ignored_mask = 0;
  uint32_t fhandle_bytes = 0;
  int fhandle_type = 0;
  std::string f_handle_hex;  // 2 * fhandle_bytes hex digits, for open_by_handle_at
};

struct FdInfo {
  uint64_t pos = 0;
  uint32_t flags = 0;  // O_* of the open file description (octal in the text)
  int mnt_id = 0;
  uint64_t ino = 0;    // 0 when the kernel predates the "ino:" line
  std::optional<int> tty_index;  // a pty master (/dev/ptmx): its pair's number, N of /dev/pts/N
  // A pidfd: the PID it refers to, as the reader's /proc sees it ("Pid:");
  // -1 once that process has ended and been reaped.
  std::optional<int> pidfd_pid;

  std::optional<uint64_t> eventfd_count;  // set for an eventfd
  std::optional<int> eventfd_id;
  bool eventfd_semaphore = false;  // EFD_SEMAPHORE

  bool is_timerfd = false;  // when set, all timerfd_* below come from the text
  int timerfd_clockid = 0;
  uint64_t timerfd_ticks = 0;      // expirations not yet read
  int timerfd_settime_flags = 0;   // TFD_TIMER_ABSTIME, ...
  int64_t timerfd_value_ns = 0;    // time to the next expiry; 0 when disarmed
  int64_t timerfd_interval_ns = 0;

  std::optional<uint64_t> signalfd_sigmask;  // bit N-1 for signal N

  std::vector<EpollTarget> epoll;     // in the kernel's order
  std::vector<InotifyWatch> inotify;  // in the kernel's order
  // Each "lock:" line's value as the kernel wrote it ("1: POSIX  ADVISORY
  // WRITE 14418 fe:00:10954089 5 14"): the locks taken through this open
  // file (ckpt/file_locks.h parses them).
  std::vector<std::string> locks;
};

// Parses the text of /proc/PID/fdinfo/FD. Lines are "key: value"; keys it
// does not know (fanotify, NSpid, ...) are skipped, but every
// line must have a ':'. REQUIRES of the text: pos, flags and mnt_id lines;
// a timerfd's five lines all present. An error names the line number.
Result<FdInfo> ParseFdinfo(const std::string& text);

}  // namespace roam
