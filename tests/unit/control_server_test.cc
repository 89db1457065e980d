// ControlServer on a real UNIX socket: who sent a request is the kernel's
// word, taken at connect(): uid, gid and supplementary groups of a caller
// with groups of its own (a child given them with setgroups), whatever it
// does after connecting.
#include "node/control_server.h"

#include <grp.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>

#include "wire/frame.h"

namespace roam {
namespace {

// A child that takes `groups` (as root; else it keeps its own), connects to
// `path`, then drops every supplementary group before it sends a request:
// the server must still see the groups it had when it connected.
pid_t Caller(const std::string& path, const std::vector<gid_t>& groups) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  if (getuid() == 0 && setgroups(groups.size(), groups.data()) != 0) _exit(2);
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) _exit(3);
  if (getuid() == 0 && setgroups(0, nullptr) != 0) _exit(4);
  pb::ControlRequest req;
  req.mutable_ps();
  if (!WriteFrame(fd, req).ok()) _exit(5);
  pb::ControlReply reply;
  _exit(ReadFrame(fd, &reply).ok() ? 0 : 6);
}

TEST(ControlServer, TheCallersGroupsAreTheKernelsAtConnect) {
  char dir[] = "/tmp/roam-ctl-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/roamd.sock";
  asio::io_context io;
  ControlServer::Peer seen;
  bool got = false;
  ControlServer server(
      io,
      [&](const pb::ControlRequest&, const ControlServer::Peer& peer, ControlServer::Reply reply) {
        seen = peer;
        got = true;
        reply(pb::ControlReply());
      },
      [](const pb::RunRequest&, const ControlServer::Peer&, asio::local::stream_protocol::socket) {});
  ASSERT_TRUE(server.Listen(path).ok());

  std::vector<gid_t> want = {4242, 4343, 4444};
  if (getuid() != 0) {  // not root: the caller keeps the test's own groups
    want.resize(static_cast<size_t>(getgroups(0, nullptr)));
    ASSERT_GE(getgroups(static_cast<int>(want.size()), want.data()), 0);
  }
  pid_t child = Caller(path, want);
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!got && std::chrono::steady_clock::now() < until) io.run_for(std::chrono::milliseconds(20));
  for (int i = 0; i < 50; ++i) io.run_for(std::chrono::milliseconds(2));  // the reply goes out
  int status = -1;
  waitpid(child, &status, 0);
  ASSERT_TRUE(got);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(seen.pid, child);
  EXPECT_EQ(seen.uid, getuid());
  EXPECT_EQ(seen.gid, getgid());
  pb::Credentials c = CredentialsOf(seen);
  std::vector<gid_t> groups(c.groups().begin(), c.groups().end());
  std::sort(groups.begin(), groups.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(groups, want);
  EXPECT_EQ(c.uid(), getuid());
  unlink(path.c_str());
  rmdir(dir);
}

}  // namespace
}  // namespace roam
