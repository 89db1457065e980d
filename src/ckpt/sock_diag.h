// One sock_diag dump (NETLINK_SOCK_DIAG): the request, then each answer,
// for file_unix.cc and file_inet.cc. The kernel answers for the caller's
// network namespace only.
#pragma once

#include <linux/netlink.h>

#include <cstddef>
#include <cstdint>
#include <functional>

#include "common/status.h"

namespace roam {

// Sends `req` (`len` bytes: the family's request, NLM_F_DUMP is set here)
// and calls `each` with every answer's payload and its length, until the
// kernel is done or `each` returns false (found what it wanted).
Status SockDiagDump(const void* req, size_t len, const std::function<bool(const void*, size_t)>& each);

// Sends one request of `type` (SOCK_DESTROY ...) and waits for the kernel's
// answer: ok, or its errno.
Status SockDiagRequest(uint16_t type, const void* req, size_t len);

}  // namespace roam
