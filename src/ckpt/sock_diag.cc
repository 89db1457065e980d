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

namespace {

// A NETLINK_SOCK_DIAG socket with one request of `type` sent on it.
Result<UniqueFd> Send(uint16_t type, uint16_t flags, const void* req, size_t len) {
  UniqueFd nl(socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  if (!nl.ok()) return Status::Errno("netlink sock_diag");
  std::vector<char> msg(NLMSG_LENGTH(len));
  auto* nlh = reinterpret_cast<nlmsghdr*>(msg.data());
  nlh->nlmsg_len = static_cast<uint32_t>(msg.size());
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = flags;
  memcpy(NLMSG_DATA(nlh), req, len);
  if (send(nl.get(), msg.data(), msg.size(), 0) != static_cast<ssize_t>(msg.size())) {
    return Status::Errno("sock_diag request");
  }
  return nl;
}

}  // namespace

Status SockDiagDump(const void* req, size_t len, const std::function<bool(const void*, size_t)>& each) {
  Result<UniqueFd> nl = Send(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, req, len);
  if (!nl.ok()) return nl.status();
  std::vector<char> buf(64 * 1024);
  for (;;) {
    ssize_t n = recv(nl->get(), buf.data(), buf.size(), 0);
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
  Result<UniqueFd> nl = Send(type, NLM_F_REQUEST | NLM_F_ACK, req, len);
  if (!nl.ok()) return nl.status();
  char buf[1024];
  for (;;) {
    ssize_t n = recv(nl->get(), buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::Errno("sock_diag reply");
    auto* h = reinterpret_cast<nlmsghdr*>(buf);
    if (!NLMSG_OK(h, static_cast<unsigned>(n)) || h->nlmsg_type != NLMSG_ERROR) continue;
    const auto* err = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
    return err->error == 0 ? Status::Ok() : Status::Errno("sock_diag", -err->error);
  }
}

}  // namespace roam
