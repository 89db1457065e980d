// NodeView: how one node of a local cluster looks right now from the host,
// combining its NodeRecord (state.json) with /proc and its cgroup:
//   running  the init is alive and a roamd process runs in the node
//   stopped  the init is alive, no roamd
//   down     the init is gone (or its PID now belongs to something else)
// Also the rendering of `cluster status` (JSON, terminal table, plain text).
#pragma once

#include <string>
#include <vector>

#include "localcluster/cluster_state.h"

namespace roam::localcluster {

enum class NodeState { kRunning, kStopped, kDown };
const char* NodeStateName(NodeState state);

struct NodeView {
  std::string name;
  std::string address;
  int init_pid = 0;   // host PID of the node's init; 0 when down
  int roamd_pid = 0;  // host PID of its roamd; 0 when none
  NodeState state = NodeState::kDown;
  double cpu_quota = 0;
  uint64_t mem_limit = 0;
};

// The cpu and memory cgroup directories of node `node` ("" for memory if none).
std::string NodeCpuCgroup(const ClusterState& cluster, const std::string& node);
std::string NodeMemoryCgroup(const ClusterState& cluster, const std::string& node);

NodeView InspectNode(const ClusterState& cluster, const NodeRecord& node);
std::vector<NodeView> InspectCluster(const ClusterState& cluster);

// {"cluster":"C","subnet":..,"bridge":..,"shared":..,"nodes":[{"name","address",
//  "init_pid","roamd_pid","state","cpu_quota","mem_limit"}]} and a newline.
std::string RenderStatusJson(const ClusterState& cluster, const std::vector<NodeView>& nodes);
// A header and one line per node. `aligned`: padded columns for a terminal;
// else single spaces. cpu_quota and mem_limit print as "-" when unlimited.
std::string RenderStatusTable(const std::vector<NodeView>& nodes, bool aligned);

}  // namespace roam::localcluster
