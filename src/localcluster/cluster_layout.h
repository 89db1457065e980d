// ClusterLayout: every name, path and address of a local cluster that can be
// derived from its name alone, so that `up`, `status`, `exec` and `down` (and
// a human cleaning up by hand) agree without consulting each other.
//
//   state dir      /var/lib/roam/clusters/<C>/        (key, state.json)
//   bridge         rbr-<h>          h = 6 hex digits of FNV-1a(<C>)
//   host veth      rve-<h>-<i>      peer is `eth0` inside node n<i>
//   cgroups        <our cgroup>/roam-<C>/n<i>  in the cpu and memory hierarchies
//   subnet         10.213.<X>.0/24  X preferred from the hash (see
//                  PreferredSubnetOctet); nodes .1 ... .N, bridge .254
//
// Interface names fit IFNAMSIZ (15 characters) for up to 999 nodes.
// Pure functions and constants only; nothing here touches the system.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace roam::localcluster {

inline constexpr const char* kDefaultClusterName = "default";
inline constexpr const char* kDefaultSharedDir = "/var/lib/roam/shared";
inline constexpr const char* kClustersRoot = "/var/lib/roam/clusters";
inline constexpr int kRoamdPort = 7946;
inline constexpr int kDashboardPort = 7948;  // each node's dashboard, on its own address
inline constexpr const char* kMulticastGroup = "239.192.77.77:7947";
inline constexpr int kMaxNodes = 250;
inline constexpr int kBridgeHostOctet = 254;

// Inside every node (private /run).
inline constexpr const char* kNodeRunDir = "/run/roam";
inline constexpr const char* kRoamdConfPath = "/run/roam/roamd.conf";
inline constexpr const char* kRoamdLogPath = "/run/roam/roamd.log";
inline constexpr const char* kRoamdSocketPath = "/run/roam/roamd.sock";
inline constexpr const char* kNodeInitLogPath = "/run/roam/node-init.log";
// The jobs' TMPDIR (roamd.conf job_tmpdir): in the shared directory, which
// every node sees, so that temporary files move with their job.
inline std::string JobTmpdir(const std::string& shared) { return shared + "/.roam-tmp"; }

// A cluster name is 1-32 characters of [A-Za-z0-9_-]: it becomes part of
// paths and cgroup names.
Status ValidateClusterName(const std::string& name);

// 32-bit FNV-1a; stable across builds and machines.
uint32_t NameHash(const std::string& name);

class ClusterLayout {
 public:
  // REQUIRES: ValidateClusterName(name).ok().
  explicit ClusterLayout(std::string name);

  const std::string& name() const { return name_; }
  const std::string& hash_hex() const { return hash_hex_; }  // 6 hex digits

  std::string StateDir() const;   // /var/lib/roam/clusters/<C>
  std::string KeyPath() const;    // .../key
  std::string StatePath() const;  // .../state.json

  std::string BridgeName() const;         // rbr-<h>
  std::string VethPrefix() const;         // rve-<h>-
  std::string HostVethName(int i) const;  // rve-<h>-<i>, i >= 1
  std::string CgroupDirName() const;      // roam-<C>

  // The third octet the cluster tries first; `up` moves to the next free one
  // if another cluster or a host interface already uses it. In [16, 239].
  int PreferredSubnetOctet() const;

 private:
  std::string name_;
  std::string hash_hex_;
};

std::string NodeName(int i);  // "n<i>", i >= 1

// 10.213.<octet>.<host>
std::string SubnetAddress(int octet, int host);
std::string SubnetCidr(int octet);  // 10.213.<octet>.0/24
inline constexpr int kSubnetPrefixLength = 24;

}  // namespace roam::localcluster
