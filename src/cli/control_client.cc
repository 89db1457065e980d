#include "cli/control_client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "wire/frame.h"
#include "wire/reply.h"

namespace roam {

std::string DefaultControlSocket() {
  if (const char* env = std::getenv("ROAM_SOCKET"); env && *env) return env;
  return "/run/roam/roamd.sock";
}

Result<int> ConnectRoamd(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return Status::Error("control socket path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::Errno("socket");
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    Status st = Status::Errno("cannot reach roamd at " + path + " (is roamd running?)");
    ::close(fd);
    return st;
  }
  return fd;
}

Result<pb::ControlReply> CallRoamd(const std::string& path, const pb::ControlRequest& req) {
  Result<int> connected = ConnectRoamd(path);
  if (!connected.ok()) return connected.status();
  const int fd = *connected;
  pb::ControlReply reply;
  Status st = WriteFrame(fd, req);
  if (st.ok()) st = ReadFrame(fd, &reply);
  ::close(fd);
  if (!st.ok()) return st;
  if (Status st = ReplyStatus(reply); !st.ok()) return st;
  return reply;
}

}  // namespace roam
