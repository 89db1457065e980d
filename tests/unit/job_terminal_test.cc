// The terminal of a -t job (node/job_terminal.h, ckpt/file_terminal.cc):
// on real pseudo-terminals of this kernel, what a move takes out of a
// terminal and puts back into another.
#include "node/job_terminal.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include <string>

#include "ckpt/files.h"
#include "common/terminal.h"

namespace roam {
namespace {

// What `fd` (non-blocking) has to read within `ms`, until it stays quiet.
std::string Drain(int fd, int ms = 100) {
  std::string got;
  char buf[512];
  pollfd p{fd, POLLIN, 0};
  while (::poll(&p, 1, ms) > 0) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

class JobTerminalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "TIOCSTI needs CAP_SYS_ADMIN (make test runs as root)";
    Result<JobPty> p = OpenJobPty(getuid(), nullptr, nullptr);
    ASSERT_TRUE(p.ok()) << p.status().message();
    pty_ = *p;
    ASSERT_EQ(fcntl(pty_.master, F_SETFL, O_NONBLOCK), 0);
    ASSERT_EQ(fcntl(pty_.slave, F_SETFL, O_NONBLOCK), 0);
  }
  void TearDown() override {
    if (pty_.master >= 0) close(pty_.master);
    if (pty_.slave >= 0) close(pty_.slave);
  }
  void Type(const std::string& s) {
    ASSERT_EQ(write(pty_.master, s.data(), s.size()), static_cast<ssize_t>(s.size()));
  }
  JobPty pty_;
};

TEST_F(JobTerminalTest, TakesALineBeingTypedAndPutsItBackWithoutEcho) {
  Result<pb::Termios> before = ReadTermios(pty_.slave);
  ASSERT_TRUE(before.ok());
  Type("one\npart");
  Drain(pty_.master);  // the echo
  Result<std::string> got = TakeUnreadInput(pty_.slave);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(*got, "one\npart") << "the whole line and the one being typed";
  EXPECT_EQ(Drain(pty_.slave), "") << "taken out";
  Result<pb::Termios> after = ReadTermios(pty_.slave);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->SerializeAsString(), before->SerializeAsString()) << "the mode is put back";

  ASSERT_TRUE(PutUnreadInput(pty_.slave, *got).ok());
  EXPECT_EQ(Drain(pty_.master), "") << "no second echo";
  Type("X\n");
  EXPECT_EQ(Drain(pty_.slave), "one\npartX\n") << "the line being typed goes on where it was";
  after = ReadTermios(pty_.slave);
  EXPECT_EQ(after->SerializeAsString(), before->SerializeAsString());
}

TEST_F(JobTerminalTest, AnEndOfInputTypedAndNotReadComesBackAsOne) {
  Type("\x04");
  Drain(pty_.master);
  Result<std::string> got = TakeUnreadInput(pty_.slave);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(*got, "\x04");
  ASSERT_TRUE(PutUnreadInput(pty_.slave, *got).ok());
  char c;
  EXPECT_EQ(read(pty_.slave, &c, 1), 0) << "a read sees the end of input";
}

TEST_F(JobTerminalTest, InputNotYetProcessedGoesInAsTyped) {
  ASSERT_TRUE(PutUnreadInput(pty_.slave, "hi\n", /*echoed=*/false).ok());
  EXPECT_EQ(Drain(pty_.master), "hi\r\n") << "echoed now, as if typed";
  EXPECT_EQ(Drain(pty_.slave), "hi\n");
}

TEST(TerminalDevice, TtyNrOfProcStatIsTheDeviceNumber) {
  EXPECT_EQ(TtyNrToDev(34816), makedev(136, 0));                       // /dev/pts/0
  EXPECT_EQ(TtyNrToDev((136 << 8) | 0x2c | (0x100 << 12)), makedev(136, 300));  // /dev/pts/300
  EXPECT_EQ(TtyNrToDev(0x0401), makedev(4, 1));                        // /dev/tty1
}

}  // namespace
}  // namespace roam
