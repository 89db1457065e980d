// A pseudo-terminal pair made again from its image record (ckpt/file_pty.cc
// OpenPtys), on real ptys of this kernel: the bytes that waited either way
// come out as they would have, by TIOCSTI as root and, in a child that
// dropped CAP_SYS_ADMIN (a job rebuilt at home by its deputy, as its user),
// by writing into the master.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <map>
#include <string>

#include "ckpt/files.h"
#include "common/terminal.h"

namespace roam {
namespace {

// What `fd` (any mode) has to read right now, within `ms` per read.
std::string ReadNow(int fd, int ms = 200) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, ms) <= 0 || !(p.revents & POLLIN)) return "";
  char buf[256];
  ssize_t n = read(fd, buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

// A table of one pair whose slave a process held, `input` typed into it
// and unread, `output` written by it and unread, in a fresh pty's mode
// with echo off.
pb::FileTable OnePair(const std::string& input, const std::string& output) {
  pb::FileTable table;
  pb::PtyPair* pair = table.add_ptys();
  pair->set_index(7);
  int m = posix_openpt(O_RDWR | O_NOCTTY);
  Result<pb::Termios> mode = ReadTermios(m);
  close(m);
  EXPECT_TRUE(mode.ok());
  if (mode.ok()) *pair->mutable_mode() = *mode;
  pair->mutable_mode()->set_lflag(pair->mode().lflag() & ~static_cast<uint32_t>(ECHO));
  pair->mutable_size()->set_rows(33);
  pair->mutable_size()->set_cols(101);
  pair->set_input(input);
  pair->set_output(output);
  pair->set_mode_bits(0620);
  pair->set_uid(getuid());
  pair->set_gid(getgid());
  for (uint32_t id : {1u, 2u}) {
    pb::FileDesc* d = table.add_files();
    d->set_id(id);
    d->set_kind(id == 1 ? pb::FILE_PTY_MASTER : pb::FILE_PTY_SLAVE);
    d->set_flags(O_RDWR);
    d->set_pty_index(7);
  }
  return table;
}

// Made again; then what a reader of each end finds, as "slave|master":
// the slave read twice around "f\n" typed after (a line still being typed
// must wait for it), the master once. "error: ..." if it could not be made.
std::string Rebuild(const pb::FileTable& table) {
  std::map<uint32_t, int> fds;
  Status st = OpenPtys(table, &fds);
  if (!st.ok()) return "error: " + st.message();
  const int master = fds[1], slave = fds[2];
  winsize ws{};
  ioctl(slave, TIOCGWINSZ, &ws);
  std::string got = ReadNow(slave) + "+";
  got += ReadNow(slave, 50) + "+";  // a partial line is not readable yet
  if (write(master, "f\n", 2) != 2) return "error: write";
  got += ReadNow(slave) + "|" + ReadNow(master) + "|" + std::to_string(ws.ws_row) + "x" + std::to_string(ws.ws_col);
  close(master);
  close(slave);
  return got;
}

TEST(PtyPair, WaitingBytesComeBackAsTheyWere) {
  if (geteuid() != 0) GTEST_SKIP() << "TIOCSTI needs CAP_SYS_ADMIN (make test runs as root)";
  EXPECT_EQ(Rebuild(OnePair("abc\nde", "out\r\n")), "abc\n++def\n|out\r\n|33x101");
  EXPECT_EQ(Rebuild(OnePair("", "")), "++f\n||33x101");
}

TEST(PtyPair, TypedInputKeepsItsLinesWithoutCapSysAdmin) {
  // In a child that drops CAP_SYS_ADMIN from its effective set: TIOCSTI
  // fails there (another session's terminal), so the input goes in by the
  // master. Until 2026-12-07 that path made all of it one line ("abc\nde").
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(pipe_fds[0]);
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    std::string got;
    if (syscall(SYS_capget, &hdr, data) != 0) {
      got = "capget failed";
    } else {
      data[CAP_SYS_ADMIN / 32].effective &= ~(1u << (CAP_SYS_ADMIN % 32));
      if (syscall(SYS_capset, &hdr, data) != 0) got = "capset failed";
    }
    const char c = 'x';
    if (got.empty() && ioctl(posix_openpt(O_RDWR | O_NOCTTY), TIOCSTI, &c) == 0) got = "TIOCSTI still works";
    if (got.empty()) got = Rebuild(OnePair("abc\nde", "out\r\n"));
    (void)!write(pipe_fds[1], got.data(), got.size());
    _exit(0);
  }
  close(pipe_fds[1]);
  std::string got;
  char buf[256];
  for (ssize_t n; (n = read(pipe_fds[0], buf, sizeof buf)) > 0;) got.append(buf, static_cast<size_t>(n));
  close(pipe_fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_EQ(got, "abc\n++def\n|out\r\n|33x101");
}

TEST(PtyPair, SlaveIndexOfDeviceNumbers) {
  EXPECT_EQ(PtySlaveIndex(makedev(136, 0)), 0u);
  EXPECT_EQ(PtySlaveIndex(makedev(136, 255)), 255u);
  EXPECT_EQ(PtySlaveIndex(makedev(137, 3)), 259u);
  EXPECT_FALSE(PtySlaveIndex(makedev(5, 2)).has_value());  // /dev/ptmx
  EXPECT_FALSE(PtySlaveIndex(makedev(4, 1)).has_value());  // /dev/tty1
  EXPECT_TRUE(IsPtyMaster("/dev/ptmx"));
  EXPECT_TRUE(IsPtyMaster("/dev/pts/ptmx"));
  EXPECT_FALSE(IsPtyMaster("/dev/pts/3"));
}

}  // namespace
}  // namespace roam
