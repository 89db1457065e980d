// JobCgroup on the real kernel (root, cgroup2, BPF): a process put in a
// job's cgroup connects (and sends datagrams) into the subnet from the
// job's address, and only there. Loopback stands in for the cluster's subnet: 127.0.0.2 is the
// job's address, a listener on 127.0.0.1 the peer.
#include "node/job_cgroup.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "node/iface_address.h"

namespace roam {
namespace {

in_addr A(const char* text) { return *ParseIpv4(text); }

class JobCgroupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(listener_, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr = A("127.0.0.1");
    ASSERT_EQ(bind(listener_, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    ASSERT_EQ(listen(listener_, 8), 0);
    socklen_t len = sizeof sa;
    ASSERT_EQ(getsockname(listener_, reinterpret_cast<sockaddr*>(&sa), &len), 0);
    port_ = sa.sin_port;
  }
  void TearDown() override { close(listener_); }

  // The local address of a connection to the listener made by a child put
  // in `dir` (none: left where it is); `bind_first`: bound by the program
  // to 127.0.0.3 first.
  std::string SourceFromChild(const std::string& dir, bool bind_first = false) {
    int p[2];
    EXPECT_EQ(pipe(p), 0);
    pid_t pid = fork();
    if (pid == 0) {
      close(p[0]);
      if (!dir.empty() && !EnterCgroup(dir, {getpid()}).ok()) _exit(2);
      int s = socket(AF_INET, SOCK_STREAM, 0);
      if (bind_first) {
        // As `curl --interface` does: the address now, the port at connect.
        int one = 1;
        if (setsockopt(s, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one) != 0) _exit(5);
        sockaddr_in b{};
        b.sin_family = AF_INET;
        b.sin_addr = A("127.0.0.3");
        if (bind(s, reinterpret_cast<sockaddr*>(&b), sizeof b) != 0) _exit(3);
      }
      sockaddr_in to{};
      to.sin_family = AF_INET;
      to.sin_addr = A("127.0.0.1");
      to.sin_port = port_;
      if (connect(s, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) _exit(4);
      sockaddr_in me{};
      socklen_t len = sizeof me;
      getsockname(s, reinterpret_cast<sockaddr*>(&me), &len);
      char text[INET_ADDRSTRLEN] = "";
      inet_ntop(AF_INET, &me.sin_addr, text, sizeof text);
      (void)!write(p[1], text, strlen(text));
      _exit(0);
    }
    close(p[1]);
    char buf[64] = "";
    ssize_t n = read(p[0], buf, sizeof buf - 1);
    close(p[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
    int c = accept(listener_, nullptr, nullptr);
    if (c >= 0) close(c);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
  }

  // The source address of a datagram sent with sendto (no connect) to
  // 127.0.0.1 by a child put in `dir`.
  std::string DatagramSourceFromChild(const std::string& dir) {
    int r = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_addr = A("127.0.0.1");
    EXPECT_EQ(bind(r, reinterpret_cast<sockaddr*>(&at), sizeof at), 0);
    socklen_t len = sizeof at;
    getsockname(r, reinterpret_cast<sockaddr*>(&at), &len);
    pid_t pid = fork();
    if (pid == 0) {
      if (!dir.empty() && !EnterCgroup(dir, {getpid()}).ok()) _exit(2);
      int s = socket(AF_INET, SOCK_DGRAM, 0);
      if (sendto(s, "x", 1, 0, reinterpret_cast<sockaddr*>(&at), sizeof at) != 1) _exit(3);
      _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
    sockaddr_in from{};
    socklen_t flen = sizeof from;
    char byte;
    std::string out;
    if (recvfrom(r, &byte, 1, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &flen) == 1) {
      char text[INET_ADDRSTRLEN] = "";
      inet_ntop(AF_INET, &from.sin_addr, text, sizeof text);
      out = text;
    }
    close(r);
    return out;
  }

  int listener_ = -1;
  in_port_t port_ = 0;
};

TEST_F(JobCgroupTest, ConnectionsIntoTheSubnetLeaveFromTheJobsAddress) {
  Result<JobCgroup> cg = JobCgroup::Make("unit", "u1:" + std::to_string(getpid()), A("127.0.0.2"), A("127.0.0.0"),
                                         A("255.0.0.0"));
  ASSERT_TRUE(cg.ok()) << cg.status().message();
  EXPECT_NE(cg->fd(), -1);
  EXPECT_EQ(SourceFromChild(""), "127.0.0.1");  // outside the cgroup: as ever
  EXPECT_EQ(SourceFromChild(cg->dir()), "127.0.0.2");
  // A socket the program bound itself keeps its address.
  EXPECT_EQ(SourceFromChild(cg->dir(), /*bind_first=*/true), "127.0.0.3");
  // A datagram sent with sendto, unconnected: its source is the job's too.
  EXPECT_EQ(DatagramSourceFromChild(""), "127.0.0.1");
  EXPECT_EQ(DatagramSourceFromChild(cg->dir()), "127.0.0.2");
  const std::string dir = cg->dir();
  EXPECT_TRUE(cg->Close());  // its child has exited: empty, removed
  struct stat st;
  EXPECT_NE(stat(dir.c_str(), &st), 0);
}

TEST_F(JobCgroupTest, ConnectionsBeyondTheSubnetAreLeftAlone) {
  Result<JobCgroup> cg = JobCgroup::Make("unit", "u2:" + std::to_string(getpid()), A("127.0.0.2"), A("10.0.0.0"),
                                         A("255.0.0.0"));
  ASSERT_TRUE(cg.ok()) << cg.status().message();
  EXPECT_EQ(SourceFromChild(cg->dir()), "127.0.0.1");
  EXPECT_EQ(DatagramSourceFromChild(cg->dir()), "127.0.0.1");
}

TEST_F(JobCgroupTest, MadeAgainTheHookIsReplacedNotAdded) {
  const std::string gpid = "u3:" + std::to_string(getpid());
  Result<JobCgroup> first = JobCgroup::Make("unit", gpid, A("127.0.0.2"), A("127.0.0.0"), A("255.0.0.0"));
  ASSERT_TRUE(first.ok()) << first.status().message();
  // The same cgroup taken over (a roamd killed and started again): the
  // first hook is gone, the new address is the one used.
  Result<JobCgroup> second = JobCgroup::Make("unit", gpid, A("127.0.0.4"), A("127.0.0.0"), A("255.0.0.0"));
  ASSERT_TRUE(second.ok()) << second.status().message();
  EXPECT_EQ(second->dir(), first->dir());
  EXPECT_EQ(SourceFromChild(second->dir()), "127.0.0.4");
  EXPECT_TRUE(second->Close());
}

TEST(EnterCgroup, NamesTheDirectoryItCannotUse) {
  Status st = EnterCgroup("/nonexistent-cgroup", {getpid()});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("/nonexistent-cgroup"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace roam
