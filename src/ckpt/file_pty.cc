// Pseudo-terminal pairs inside the tree: `script`, `expect`, pexpect, a
// terminal emulator's shell. Both ends must be the tree's: the master
// (/dev/ptmx, FILE_PTY_MASTER) and every description of the slave
// (/dev/pts/N, or /dev/tty naming it: FILE_PTY_SLAVE). A slave whose master
// is outside is the job's own terminal (file_terminal.cc) or refused; a
// slave held open outside the tree refuses the dump.
//
// The restore makes a new pair, whose number is whatever devpts gives (its
// old one is still taken on the source while a move is under way), in the
// pair's state: the slave's mode, window size, owner and permissions, the
// master's packet mode and lock, and the bytes waiting in either direction.
// A session leader whose controlling terminal the slave was gets it back
// (file_terminal.cc: ctty_file may name a FILE_PTY_SLAVE).
//
// Unread bytes cannot be peeked at on a terminal: the dump takes them out
// and puts them straight back (the tree may go on). What the slave wrote
// and the master has not read is read from the master and written into
// the slave again with output processing off; what was typed into the
// master and the slave has not read is TakeUnreadInput's (a line still
// being typed included), put back as typed (TIOCSTI, which needs
// CAP_SYS_ADMIN; without it written into the master with echo, signals
// and translation off for the moment).
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "ckpt/files.h"
#include "common/file_util.h"
#include "common/terminal.h"

namespace roam {

namespace {

constexpr int kLargeFile = 0100000;                    // the kernel's O_LARGEFILE (glibc's is 0 on x86_64)
constexpr size_t kTtyBuffer = 4095;                     // what a tty's reader holds (FIONREAD's most)
constexpr auto kQuiet = std::chrono::milliseconds(2);  // no byte for this long: a queue is empty
constexpr auto kSettle = std::chrono::seconds(1);      // bytes put back reach the other side by then

std::string PtsName(uint32_t index) { return "/dev/pts/" + std::to_string(index); }

// Bytes readable from `fd` right now (FIONREAD), -1 on error.
int Readable(int fd) {
  int n = 0;
  return ioctl(fd, FIONREAD, &n) == 0 ? n : -1;
}

// Waits until `fd` has `want` bytes to read: bytes written into one side of
// a pty reach the other through the kernel's flip buffers, a moment later.
// The reading side holds 4095 at most (N_TTY_BUF_SIZE less one); more wait
// in the flip buffers until it is read.
Status Settle(int fd, size_t want, const char* what) {
  want = std::min<size_t>(want, kTtyBuffer);
  const auto until = std::chrono::steady_clock::now() + kSettle;
  while (Readable(fd) < static_cast<int>(want)) {
    if (std::chrono::steady_clock::now() > until) {
      return Status::Error(std::string("the bytes put back into a pseudo-terminal's ") + what + " did not arrive (" +
                           std::to_string(Readable(fd)) + " of " + std::to_string(want) + ")");
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return Status::Ok();
}

// What the slave wrote and the master has not read, read from `master`
// (packet mode off meanwhile, so that no status byte comes in between).
Result<std::string> TakeOutput(int master) {
  std::string got;
  char buf[4096];
  auto quiet_since = std::chrono::steady_clock::now();
  for (;;) {
    pollfd p{master, POLLIN, 0};
    if (poll(&p, 1, 0) < 0 && errno != EINTR) return Status::Errno("poll a pseudo-terminal's master");
    if (p.revents & POLLIN) {
      ssize_t n = read(master, buf, sizeof buf);
      if (n > 0) {
        got.append(buf, static_cast<size_t>(n));
        quiet_since = std::chrono::steady_clock::now();
        continue;
      }
      if (n < 0 && errno != EINTR && errno != EIO && errno != EAGAIN) {
        return Status::Errno("read a pseudo-terminal's master");
      }
    }
    if (std::chrono::steady_clock::now() - quiet_since >= kQuiet) return got;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

// Puts `bytes` back where TakeOutput found them: written into the slave
// `peer` with output processing off (they were processed once).
Status PutOutput(int master, int peer, const std::string& bytes) {
  if (bytes.empty()) return Status::Ok();
  termios saved{};
  if (tcgetattr(peer, &saved) != 0) return Status::Errno("tcgetattr");
  termios raw = saved;
  raw.c_oflag &= ~static_cast<tcflag_t>(OPOST);
  if (tcsetattr(peer, TCSANOW, &raw) != 0) return Status::Errno("tcsetattr");
  Status st;
  size_t done = 0;
  const auto until = std::chrono::steady_clock::now() + kSettle;
  while (st.ok() && done < bytes.size()) {
    ssize_t n = write(peer, bytes.data() + done, bytes.size() - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
    } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
      st = Status::Errno("write into a pseudo-terminal's slave");
    } else if (std::chrono::steady_clock::now() > until) {
      st = Status::Error("a pseudo-terminal's slave took no more output");
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
  if (st.ok()) st = Settle(master, bytes.size(), "master");
  if (tcsetattr(peer, TCSANOW, &saved) != 0 && st.ok()) st = Status::Errno("tcsetattr");
  return st;
}

// Puts `bytes` (TakeUnreadInput's) into slave `peer` as typed and not read.
Status PutInput(int master, int peer, const std::string& bytes) {
  if (bytes.empty()) return Status::Ok();
  Status st = PutUnreadInput(peer, bytes);  // exact, with CAP_SYS_ADMIN
  if (st.ok()) return st;
  // Written into the master instead, processed as TIOCSTI's would be: in
  // the slave's own mode, canonical or not, without echo, signals or
  // translation. The bytes reach the slave a moment later (flip buffers).
  // Out of canonical mode each counts as it arrives; in it only complete
  // lines do (an end of file not at all), and the rest of one write comes
  // in the same batch, which a change of mode waits for.
  termios saved{};
  if (tcgetattr(peer, &saved) != 0) return Status::Errno("tcgetattr");
  termios quiet = saved;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO | ECHONL | ISIG | IEXTEN);
  quiet.c_iflag &= ~static_cast<tcflag_t>(INLCR | IGNCR | ICRNL | IUCLC | ISTRIP | IXON);
  if (tcsetattr(peer, TCSANOW, &quiet) != 0) return Status::Errno("tcsetattr");
  size_t counted = bytes.size();
  if (saved.c_lflag & ICANON) {
    counted = 0;
    size_t eofs = 0;
    for (size_t i = 0; i < bytes.size(); ++i) {
      const cc_t ch = static_cast<cc_t>(bytes[i]);
      if (ch == saved.c_cc[VEOF] && ch != _POSIX_VDISABLE) {
        counted = i - eofs++;
      } else if (ch == '\n' || (ch != _POSIX_VDISABLE && ch == saved.c_cc[VEOL])) {
        counted = i + 1 - eofs;
      }
    }
  }
  st = Status::Ok();
  if (write(master, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) {
    st = Status::Errno("write into a pseudo-terminal's master");
  }
  if (st.ok()) st = Settle(peer, counted, "slave");
  if (st.ok() && counted < bytes.size()) std::this_thread::sleep_for(kQuiet);  // a line being typed only
  if (tcsetattr(peer, TCSANOW, &saved) != 0 && st.ok()) st = Status::Errno("tcsetattr");
  return st;
}

}  // namespace

bool IsPtyMaster(const std::string& link) { return link == "/dev/ptmx" || link == "/dev/pts/ptmx"; }

std::optional<uint32_t> PtySlaveIndex(dev_t rdev) {
  const unsigned major_nr = major(rdev);
  if (major_nr < 136 || major_nr > 143) return std::nullopt;
  return (major_nr - 136) * 256 + minor(rdev);
}

Status DumpPtyMaster(const FdSource& src, pb::FileDesc* desc) {
  if (!src.info.tty_index) return Status::Error("a pseudo-terminal's master without tty-index in its fdinfo");
  desc->set_kind(pb::FILE_PTY_MASTER);
  desc->set_pty_index(static_cast<uint32_t>(*src.info.tty_index));
  return Status::Ok();
}

bool FileTableBuilder::PtyMasterInTree(uint32_t index) {
  if (!pty_masters_) {
    pty_masters_.emplace();
    for (pid_t pid : tree_) {
      const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
      DIR* fds = opendir(dir.c_str());
      if (fds == nullptr) continue;
      while (dirent* f = readdir(fds)) {
        char link[64];
        ssize_t n = readlinkat(dirfd(fds), f->d_name, link, sizeof(link) - 1);
        if (n <= 0 || !IsPtyMaster(std::string(link, static_cast<size_t>(n)))) continue;
        Result<std::string> text = ReadFile("/proc/" + std::to_string(pid) + "/fdinfo/" + f->d_name);
        Result<FdInfo> info = text.ok() ? ParseFdinfo(*text) : Result<FdInfo>(text.status());
        if (info.ok() && info->tty_index) pty_masters_->insert(static_cast<uint32_t>(*info->tty_index));
      }
      closedir(fds);
    }
  }
  return pty_masters_->count(index) > 0;
}

uint32_t FileTableBuilder::PtySlave(dev_t rdev) const {
  std::optional<uint32_t> index = PtySlaveIndex(rdev);
  for (const pb::FileDesc& d : table_.files()) {
    if (index && d.kind() == pb::FILE_PTY_SLAVE && d.pty_index() == *index) return d.id();
  }
  return 0;
}

Status FileTableBuilder::FinishPtys() {
  std::map<uint32_t, uint32_t> masters;  // index -> FileDesc id
  std::map<uint32_t, uint32_t> slaves;   // index -> a FileDesc id of the slave
  for (const pb::FileDesc& d : table_.files()) {
    if (d.kind() == pb::FILE_PTY_SLAVE) slaves.emplace(d.pty_index(), d.id());
    if (d.kind() != pb::FILE_PTY_MASTER) continue;
    if (!masters.emplace(d.pty_index(), d.id()).second) {
      auto [pid, fd] = users_[d.id()].front();
      return Status::Error(StatusCode::kCantMove, FdName(pid, fd) + ": two descriptions of one pseudo-terminal master");
    }
  }
  for (auto [index, id] : slaves) {
    if (masters.count(index)) continue;
    auto [pid, fd] = users_[id].front();  // (PtyMasterInTree saw one: not while the tree is frozen)
    return Status::Error(StatusCode::kCantMove,
                         FdName(pid, fd) + ": " + PtsName(index) + " has no master in the tree (not supported)");
  }
  for (auto [index, id] : masters) {
    auto [pid, fd] = users_[id].front();
    const std::string who = FdName(pid, fd) + " (the master of " + PtsName(index) + ")";
    struct stat slave_st {};
    const std::string slave_path = "/proc/" + std::to_string(pid) + "/root" + PtsName(index);
    if (stat(slave_path.c_str(), &slave_st) != 0) return Status::Errno(who + ": stat " + slave_path);
    // The slave held by anyone else (a process outside, sharing the pair)
    // would lose it without a word.
    const pid_t holder = FirstProcessOutside(tree_.empty() ? pids_ : tree_, [&](pid_t other) {
      bool found = false;
      const std::string dir = "/proc/" + std::to_string(other) + "/fd";
      if (DIR* fds = opendir(dir.c_str())) {
        while (dirent* f = readdir(fds)) {
          struct stat st {};
          if (f->d_name[0] != '.' && fstatat(dirfd(fds), f->d_name, &st, 0) == 0 && S_ISCHR(st.st_mode) &&
              st.st_rdev == slave_st.st_rdev && st.st_dev == slave_st.st_dev) {
            found = true;
          }
        }
        closedir(fds);
      }
      return found;
    });
    if (holder > 0) {
      return Status::Error(StatusCode::kCantMove, who + ": pid " + std::to_string(holder) +
                                                      ", outside the tree, holds its slave open (not supported)");
    }
    Result<UniqueFd> master = CopyFd(pid, fd);
    if (!master.ok()) return master.status().Prefixed(who + ": ");
    const int m = master->get();
    pb::PtyPair* pair = table_.add_ptys();
    pair->set_index(index);
    Result<pb::Termios> mode = ReadTermios(m);
    if (!mode.ok()) return mode.status().Prefixed(who + ": ");
    *pair->mutable_mode() = *mode;
    *pair->mutable_size() = ReadWindowSize(m);
    int locked = 0, packet = 0;
    if (ioctl(m, TIOCGPTLCK, &locked) != 0 || ioctl(m, TIOCGPKT, &packet) != 0) {
      return Status::Errno(who + ": TIOCGPTLCK/TIOCGPKT");
    }
    pair->set_locked(locked != 0);
    pair->set_packet(packet != 0);
    pair->set_uid(slave_st.st_uid);
    pair->set_gid(slave_st.st_gid);
    pair->set_mode_bits(slave_st.st_mode & 07777);
    pollfd p{m, 0, 0};
    (void)poll(&p, 1, 0);
    const bool slave_open = slaves.count(index) > 0;
    pair->set_slave_closed(!slave_open && (p.revents & POLLHUP));
    if (!slave_open && !pair->slave_closed()) continue;  // never opened: nothing can wait in it
    // The bytes waiting either way, taken out and put straight back through
    // a slave of ours, opened first (a locked pair unlocked for it): once
    // a byte is taken, nothing may keep it from going back.
    int off = 0;
    if (locked) ioctl(m, TIOCSPTLCK, &off);
    Result<int> peer = OpenPtyPeer(m);
    if (locked) ioctl(m, TIOCSPTLCK, &locked);
    if (!peer.ok()) return peer.status().Prefixed(who + ": ");
    UniqueFd slave(*peer);
    if (packet) ioctl(m, TIOCPKT, &off);
    Result<std::string> output = TakeOutput(m);
    Result<std::string> input = slave_open ? TakeUnreadInput(slave.get()) : Result<std::string>(std::string());
    Status st = output.ok() ? PutOutput(m, slave.get(), *output) : Status::Ok();
    if (input.ok()) {
      Status in = PutInput(m, slave.get(), *input);
      if (st.ok()) st = in;
    }
    if (packet) ioctl(m, TIOCPKT, &packet);
    if (!output.ok()) return output.status().Prefixed(who + ": ");
    if (!input.ok()) return input.status().Prefixed(who + ": ");
    if (!st.ok()) return st.Prefixed(who + ": ");
    pair->set_output(std::move(*output));
    pair->set_input(std::move(*input));
  }
  return Status::Ok();
}

Status OpenPtys(const pb::FileTable& table, std::map<uint32_t, int>* fds) {
  for (const pb::PtyPair& pair : table.ptys()) {
    const std::string what = "the pseudo-terminal pair that was " + PtsName(pair.index());
    UniqueFd master(posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!master.ok() || unlockpt(master.get()) != 0) return Status::Errno(what + ": posix_openpt");
    const int m = master.get();
    // Its owner and permissions (as grantpt set them for its first owner),
    // where this process may set them.
    if (const char* name = ptsname(m)) {
      if (chown(name, pair.uid(), pair.gid()) != 0 && errno != EPERM) return Status::Errno(what + ": chown " + name);
      (void)chmod(name, pair.mode_bits());
    }
    Status st = ApplyTermios(m, pair.mode());
    if (st.ok()) st = ApplyWindowSize(m, pair.size());
    if (!st.ok()) return st.Prefixed(what + ": ");
    bool slave_held = false;
    for (const pb::FileDesc& d : table.files()) {
      slave_held = slave_held || (d.kind() == pb::FILE_PTY_SLAVE && d.pty_index() == pair.index());
    }
    // A slave opened here puts the waiting bytes back; closed again, it
    // leaves the master hung up (reading EIO), as a pair whose slave was
    // closed is. A slave never opened stays so.
    if (slave_held || pair.slave_closed()) {
      Result<int> peer = OpenPtyPeer(m);
      if (!peer.ok()) return peer.status().Prefixed(what + ": ");
      UniqueFd slave(*peer);
      st = PutOutput(m, slave.get(), pair.output());
      if (st.ok()) st = PutInput(m, slave.get(), pair.input());
      if (!st.ok()) return st.Prefixed(what + ": ");
    }
    int on = 1;
    if (pair.packet() && ioctl(m, TIOCPKT, &on) != 0) return Status::Errno(what + ": TIOCPKT");
    for (const pb::FileDesc& d : table.files()) {
      if (d.pty_index() != pair.index()) continue;
      if (d.kind() == pb::FILE_PTY_MASTER) {
        int fd = fcntl(m, F_DUPFD_CLOEXEC, 0);
        if (fd < 0 || fcntl(fd, F_SETFL, static_cast<int>(d.flags()) & (O_NONBLOCK | O_ASYNC)) != 0) {
          return Status::Errno(what + ": its master");
        }
        (*fds)[d.id()] = fd;
      } else if (d.kind() == pb::FILE_PTY_SLAVE) {
        // As open(2) would: TIOCGPTPEER keeps O_CLOEXEC among the file's
        // flags (fdinfo shows it for good) and adds no O_LARGEFILE.
        const int flags =
            (static_cast<int>(d.flags()) & (O_ACCMODE | O_NONBLOCK | O_APPEND | O_ASYNC)) | O_NOCTTY | kLargeFile;
        int fd = ioctl(m, TIOCGPTPEER, flags);
        if (fd < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) return Status::Errno(what + ": open its slave");
        (*fds)[d.id()] = fd;
      }
    }
    if (pair.locked()) {
      int lock = 1;
      if (ioctl(m, TIOCSPTLCK, &lock) != 0) return Status::Errno(what + ": TIOCSPTLCK");
    }
  }
  return Status::Ok();
}

}  // namespace roam
