// The links of a local cluster, made with iproute2's `ip` (fork + exec):
// on the host, one bridge with an address and one veth pair per node whose
// peer is moved into the node's network namespace as `eth0`; inside a node,
// lo and eth0 brought up, eth0 addressed, and 224.0.0.0/4 routed out of eth0
// so that UDP multicast between nodes floods over the bridge (multicast
// snooping is off on the bridge).
//
// Host-side calls run in the caller's network namespace (the host's);
// ConfigureNodeNetwork runs in the node's. Not thread-safe (forks).
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace roam::localcluster {

// ip link add NAME type bridge; multicast snooping off; ADDRESS/PREFIX on it; up.
Status CreateBridge(const std::string& name, const std::string& address, int prefix_length);

// Creates HOST_NAME <-> eth0 with eth0 placed in the network namespace of
// `netns_pid`, enslaves HOST_NAME to `bridge` and brings it up.
Status CreateNodeVeth(const std::string& host_name, int netns_pid, const std::string& bridge);

// Deletes a link; a link that does not exist is not an error.
Status DeleteLink(const std::string& name);

// Names of the host's links that start with `prefix` (from /sys/class/net).
std::vector<std::string> LinksWithPrefix(const std::string& prefix);

// True if any address or route of the host mentions 10.213.<octet>.
Result<bool> SubnetUsedOnHost(int octet);

// In a node: lo up; ADDRESS/PREFIX on eth0; eth0 up; 224.0.0.0/4 dev eth0.
Status ConfigureNodeNetwork(const std::string& address, int prefix_length);

}  // namespace roam::localcluster
