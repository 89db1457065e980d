#include "localcluster/cluster_state.h"

#include <sys/stat.h>

#include <cerrno>
#include <nlohmann/json.hpp>

#include "common/file_util.h"

namespace roam::localcluster {

using json = nlohmann::ordered_json;

const NodeRecord* ClusterState::FindNode(const std::string& name) const {
  for (const NodeRecord& n : nodes)
    if (n.name == name) return &n;
  return nullptr;
}

std::string ClusterStateToJson(const ClusterState& s) {
  json nodes = json::array();
  for (const NodeRecord& n : s.nodes) {
    nodes.push_back({{"name", n.name},
                     {"address", n.address},
                     {"init_pid", n.init_pid},
                     {"veth", n.veth},
                     {"cpu_quota", n.cpu_quota},
                     {"mem_limit", n.mem_limit}});
  }
  json doc = {{"cluster", s.cluster},
              {"subnet", s.subnet},
              {"subnet_octet", s.subnet_octet},
              {"bridge", s.bridge},
              {"bridge_address", s.bridge_address},
              {"shared", s.shared},
              {"cgroup_cpu", s.cgroup_cpu},
              {"cgroup_memory", s.cgroup_memory},
              {"nodes", nodes}};
  return doc.dump(2) + "\n";
}

namespace {

// Reads doc[key] into *out if it has the type of *out; else names the field.
template <typename T>
Status Field(const json& doc, const char* key, T* out) {
  auto it = doc.find(key);
  if (it == doc.end()) return Status::Error(std::string("missing field \"") + key + "\"");
  try {
    *out = it->get<T>();
  } catch (const json::exception&) {
    return Status::Error(std::string("field \"") + key + "\" has the wrong type");
  }
  return Status::Ok();
}

}  // namespace

Result<ClusterState> ClusterStateFromJson(const std::string& text) {
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return Status::Error("not a JSON object");
  ClusterState s;
  for (Status st : {Field(doc, "cluster", &s.cluster), Field(doc, "subnet", &s.subnet),
                    Field(doc, "subnet_octet", &s.subnet_octet), Field(doc, "bridge", &s.bridge),
                    Field(doc, "bridge_address", &s.bridge_address), Field(doc, "shared", &s.shared),
                    Field(doc, "cgroup_cpu", &s.cgroup_cpu), Field(doc, "cgroup_memory", &s.cgroup_memory)}) {
    if (!st.ok()) return st;
  }
  auto nodes = doc.find("nodes");
  if (nodes == doc.end() || !nodes->is_array()) return Status::Error("field \"nodes\" is not an array");
  for (const json& jn : *nodes) {
    if (!jn.is_object()) return Status::Error("an entry of \"nodes\" is not an object");
    NodeRecord n;
    for (Status st : {Field(jn, "name", &n.name), Field(jn, "address", &n.address), Field(jn, "init_pid", &n.init_pid),
                      Field(jn, "veth", &n.veth), Field(jn, "cpu_quota", &n.cpu_quota),
                      Field(jn, "mem_limit", &n.mem_limit)}) {
      if (!st.ok()) return st;
    }
    s.nodes.push_back(std::move(n));
  }
  return s;
}

Result<std::optional<ClusterState>> LoadClusterState(const std::string& path) {
  struct stat sb;
  if (::stat(path.c_str(), &sb) != 0) {
    if (errno == ENOENT) return std::optional<ClusterState>();
    return Status::Errno("stat " + path);
  }
  Result<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  Result<ClusterState> s = ClusterStateFromJson(*text);
  if (!s.ok()) return Status::Error("parse " + path + ": " + s.status().message());
  return std::optional<ClusterState>(std::move(s).value());
}

Status SaveClusterState(const std::string& path, const ClusterState& state) {
  return WriteFileAtomic(path, ClusterStateToJson(state), 0644);
}

}  // namespace roam::localcluster
