// ClusterState: what `cluster up` built, persisted as
// /var/lib/roam/clusters/<C>/state.json so that later commands (in other
// processes, possibly in other cgroups) find the nodes, their init PIDs and
// their cgroups. The file is a record, not the truth: `status` checks every
// PID against /proc, and `down` also finds leftovers by name.
//
// state.json:
//   {"cluster":"C","subnet":"10.213.X.0/24","subnet_octet":X,"bridge":"rbr-h",
//    "bridge_address":"10.213.X.254","shared":"/var/lib/roam/shared",
//    "cgroup_cpu":"/sys/fs/cgroup/cpu/roam-C","cgroup_memory":"/sys/fs/cgroup/memory/.../roam-C",
//    "nodes":[{"name":"n1","address":"10.213.X.1","init_pid":4242,"veth":"rve-h-1",
//              "cpu_quota":0.5,"mem_limit":268435456}, ...]}
// cgroup_memory is "" when the memory controller is not available, and equals
// cgroup_cpu on cgroup v2 (one directory carries both controllers).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace roam::localcluster {

struct NodeRecord {
  std::string name;     // n<i>
  std::string address;  // 10.213.X.i
  int init_pid = 0;     // host PID of the node's PID 1
  std::string veth;     // host side of the node's veth pair
  double cpu_quota = 0;    // cores, 0 = none
  uint64_t mem_limit = 0;  // bytes, 0 = none
};

struct ClusterState {
  std::string cluster;
  int subnet_octet = 0;
  std::string subnet;
  std::string bridge;
  std::string bridge_address;
  std::string shared;
  std::string cgroup_cpu;     // absolute directory of the cluster's cpu cgroup
  std::string cgroup_memory;  // same for memory, "" if none
  std::vector<NodeRecord> nodes;

  // The node named `name`, or nullptr.
  const NodeRecord* FindNode(const std::string& name) const;
};

std::string ClusterStateToJson(const ClusterState& state);
// Refuses malformed documents with a message naming the bad field.
Result<ClusterState> ClusterStateFromJson(const std::string& text);

// Reads `path`: nullopt if it does not exist; an error if it exists but cannot
// be read or parsed.
Result<std::optional<ClusterState>> LoadClusterState(const std::string& path);
Status SaveClusterState(const std::string& path, const ClusterState& state);

}  // namespace roam::localcluster
