// IPv4 addresses added to and removed from this node's interfaces, and the
// ARP packets that tell the LAN where an address lives (RFC 5227): the
// kernel side of a job's own address (job_address.h). Root only
// (CAP_NET_ADMIN, CAP_NET_RAW). Each call acts in the caller's network
// namespace and is safe on any thread.
#pragma once

#include <netinet/in.h>

#include <asio.hpp>
#include <chrono>
#include <functional>
#include <string>

#include "common/status.h"

namespace roam {

// "10.1.2.3" -> the address; an error line for anything else.
Result<in_addr> ParseIpv4(const std::string& text);
std::string Ipv4Text(in_addr a);

// The interface whose IPv4 subnet holds `a` (its index), e.g. eth0 for
// 10.213.7.200 when eth0 is 10.213.7.2/24, and that subnet.
struct Subnet {
  int ifindex = 0;
  in_addr net{}, mask{};  // network order: 10.213.7.0, 255.255.255.0
};
Result<Subnet> SubnetOf(in_addr a);
Result<int> InterfaceFor(in_addr a);

// Adds `a` as a /32 (no prefix route) to the interface of its subnet, then
// announces it (gratuitous ARP) so that the peers' caches point to this
// node at once. Already there: only announced.
Status AddAddress(in_addr a);
// Removes it from whichever interface has it; absent is not an error.
Status RemoveAddress(in_addr a);
// Whether this node has `a` on an interface now.
bool HasAddress(in_addr a);

// Asks the LAN whether anyone has `a` (an ARP probe from 0.0.0.0) and
// listens `wait` for an answer: done(true) if some host claims it. Runs on
// `io` without blocking it.
void ProbeAddress(asio::io_context& io, in_addr a, std::chrono::milliseconds wait,
                  std::function<void(Result<bool> in_use)> done);

}  // namespace roam
