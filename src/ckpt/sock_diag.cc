// sock_diag dumps (sock_diag.h).
#include "ckpt/sock_diag.h"

#include <linux/sock_diag.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "common/unique_fd.h"

namespace roam {

Status SockDiagDump(const void* req, size_t len, const std::function<bool(const void*, size_t)>& each) {
  int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (nl < 0) return Status::Errno("netlink sock_diag");
  UniqueFd closer(nl);
  std::vector<char> msg(NLMSG_LENGTH(len));
  auto* nlh = reinterpret_cast<nlmsghdr*>(msg.data());
  nlh->nlmsg_len = static_cast<uint32_t>(msg.size());
  nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  memcpy(NLMSG_DATA(nlh), req, len);
  if (send(nl, msg.data(), msg.size(), 0) != static_cast<ssize_t>(msg.size())) return Status::Errno("sock_diag request");
  std::vector<char> buf(64 * 1024);
  for (;;) {
    ssize_t n = recv(nl, buf.data(), buf.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::Errno("sock_diag reply");
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(h, static_cast<unsigned>(n)); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_DONE) return Status::Ok();
      if (h->nlmsg_type == NLMSG_ERROR) return Status::Error("sock_diag: the kernel refused the request");
      if (!each(NLMSG_DATA(h), h->nlmsg_len - NLMSG_LENGTH(0))) return Status::Ok();
    }
  }
}

Status SockDiagRequest(uint16_t type, const void* req, size_t len) {
  int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (nl < 0) return Status::Errno("netlink sock_diag");
  UniqueFd closer(nl);
  std::vector<char> msg(NLMSG_LENGTH(len));
  auto* nlh = reinterpret_cast<nlmsghdr*>(msg.data());
  nlh->nlmsg_len = static_cast<uint32_t>(msg.size());
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  memcpy(NLMSG_DATA(nlh), req, len);
  if (send(nl, msg.data(), msg.size(), 0) != static_cast<ssize_t>(msg.size())) return Status::Errno("sock_diag request");
  char buf[1024];
  for (;;) {
    ssize_t n = recv(nl, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::Errno("sock_diag reply");
    auto* h = reinterpret_cast<nlmsghdr*>(buf);
    if (!NLMSG_OK(h, static_cast<unsigned>(n)) || h->nlmsg_type != NLMSG_ERROR) continue;
    const auto* err = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
    return err->error == 0 ? Status::Ok() : Status::Errno("sock_diag", -err->error);
  }
}

}  // namespace roam
