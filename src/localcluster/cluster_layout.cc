#include "localcluster/cluster_layout.h"

#include <cstdio>

namespace roam::localcluster {

Status ValidateClusterName(const std::string& name) {
  if (name.empty() || name.size() > 32)
    return Status::Error("cluster name '" + name + "' must be 1 to 32 characters long");
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-';
    if (!ok) return Status::Error("cluster name '" + name + "' may only hold letters, digits, '_' and '-'");
  }
  return Status::Ok();
}

uint32_t NameHash(const std::string& name) {
  uint32_t h = 2166136261u;
  for (unsigned char c : name) {
    h ^= c;
    h *= 16777619u;
  }
  return h;
}

ClusterLayout::ClusterLayout(std::string name) : name_(std::move(name)) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%06x", NameHash(name_) & 0xffffffu);
  hash_hex_ = buf;
}

std::string ClusterLayout::StateDir() const { return std::string(kClustersRoot) + "/" + name_; }
std::string ClusterLayout::KeyPath() const { return StateDir() + "/key"; }
std::string ClusterLayout::StatePath() const { return StateDir() + "/state.json"; }
std::string ClusterLayout::BridgeName() const { return "rbr-" + hash_hex_; }
std::string ClusterLayout::VethPrefix() const { return "rve-" + hash_hex_ + "-"; }
std::string ClusterLayout::HostVethName(int i) const { return VethPrefix() + std::to_string(i); }
std::string ClusterLayout::CgroupDirName() const { return "roam-" + name_; }

int ClusterLayout::PreferredSubnetOctet() const { return 16 + static_cast<int>((NameHash(name_) >> 24) % 224); }

std::string NodeName(int i) { return "n" + std::to_string(i); }

std::string SubnetAddress(int octet, int host) {
  return "10.213." + std::to_string(octet) + "." + std::to_string(host);
}

std::string SubnetCidr(int octet) { return SubnetAddress(octet, 0) + "/" + std::to_string(kSubnetPrefixLength); }

}  // namespace roam::localcluster
