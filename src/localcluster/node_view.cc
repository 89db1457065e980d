#include "localcluster/node_view.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "localcluster/cgroup.h"
#include "localcluster/node_limits.h"
#include "localcluster/node_processes.h"

namespace roam::localcluster {

const char* NodeStateName(NodeState state) {
  switch (state) {
    case NodeState::kRunning: return "running";
    case NodeState::kStopped: return "stopped";
    case NodeState::kDown: return "down";
  }
  return "down";
}

std::string NodeCpuCgroup(const ClusterState& cluster, const std::string& node) {
  return cluster.cgroup_cpu.empty() ? "" : cluster.cgroup_cpu + "/" + node;
}

std::string NodeMemoryCgroup(const ClusterState& cluster, const std::string& node) {
  return cluster.cgroup_memory.empty() ? "" : cluster.cgroup_memory + "/" + node;
}

NodeView InspectNode(const ClusterState& cluster, const NodeRecord& node) {
  NodeView v;
  v.name = node.name;
  v.address = node.address;
  v.cpu_quota = node.cpu_quota;
  v.mem_limit = node.mem_limit;
  if (!IsLiveNodeInit(node.init_pid, cluster.cluster, node.name)) return v;
  v.init_pid = node.init_pid;
  std::string cpu_dir = NodeCpuCgroup(cluster, node.name);
  bool have_cgroup = !cpu_dir.empty() && ::access((cpu_dir + "/cgroup.procs").c_str(), R_OK) == 0;
  // The cgroup is the cheap way; the PID namespace scan also finds a roamd
  // that someone moved out of the node's cgroup.
  v.roamd_pid = have_cgroup ? FindRoamd(CgroupProcs(cpu_dir)) : 0;
  if (v.roamd_pid == 0) v.roamd_pid = FindRoamd(ProcessesInPidNamespaceOf(node.init_pid));
  v.state = v.roamd_pid != 0 ? NodeState::kRunning : NodeState::kStopped;
  return v;
}

std::vector<NodeView> InspectCluster(const ClusterState& cluster) {
  std::vector<NodeView> out;
  for (const NodeRecord& n : cluster.nodes) out.push_back(InspectNode(cluster, n));
  return out;
}

std::string RenderStatusJson(const ClusterState& cluster, const std::vector<NodeView>& nodes) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const NodeView& v : nodes) {
    list.push_back({{"name", v.name},
                    {"address", v.address},
                    {"init_pid", v.init_pid},
                    {"roamd_pid", v.roamd_pid},
                    {"state", NodeStateName(v.state)},
                    {"cpu_quota", v.cpu_quota},
                    {"mem_limit", v.mem_limit}});
  }
  nlohmann::ordered_json doc = {{"cluster", cluster.cluster},
                        {"subnet", cluster.subnet},
                        {"bridge", cluster.bridge},
                        {"bridge_address", cluster.bridge_address},
                        {"shared", cluster.shared},
                        {"nodes", list}};
  return doc.dump() + "\n";
}

namespace {

std::string FormatQuota(double cores) {
  if (cores <= 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", cores);
  return buf;
}

}  // namespace

std::string RenderStatusTable(const std::vector<NodeView>& nodes, bool aligned) {
  std::vector<std::vector<std::string>> rows = {
      {"NAME", "ADDRESS", "STATE", "INIT_PID", "ROAMD_PID", "CPU_QUOTA", "MEM_LIMIT"}};
  for (const NodeView& v : nodes) {
    rows.push_back({v.name, v.address, NodeStateName(v.state), std::to_string(v.init_pid),
                    std::to_string(v.roamd_pid), FormatQuota(v.cpu_quota),
                    v.mem_limit ? FormatMemSize(v.mem_limit) : "-"});
  }
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& row : rows)
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      if (c > 0) line += aligned ? "  " : " ";
      line += row[c];
      if (aligned && c + 1 < row.size()) line.append(width[c] - row[c].size(), ' ');
    }
    out += line + "\n";
  }
  return out;
}

}  // namespace roam::localcluster
