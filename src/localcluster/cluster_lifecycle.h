// Bringing a local cluster up and tearing it down (`cluster up`, `cluster down`).
//
// BringUpCluster refuses a cluster whose nodes are still running, cleans the
// leftovers of a previous run that crashed (stale state.json, bridge, veths,
// cgroups, orphaned inits), creates the cluster key (0600, 64 hex digits)
// if it is missing, the shared directory, the bridge, then one node at a time
// (cgroups, namespaces, veth) and writes state.json as it goes, so that a
// crash half-way leaves something TearDownCluster can clean. It returns once
// every node's roamd process exists; on any failure it tears down what it
// built and returns the first error.
//
// TearDownCluster SIGKILLs every process of every node (the inits, and every
// PID in the node cgroups), waits until they are gone, removes the cgroups,
// the bridge, any veth of the cluster and state.json. The key and the shared
// directory stay. It finds leftovers by name (node_processes.h,
// cluster_layout.h), so it works with a missing or stale state.json, and a
// cluster that is not there is a success.
//
// Both take an exclusive flock on the cluster's state directory, so two of
// them never interleave on the same cluster. REQUIRES: root.
#pragma once

#include <string>

#include "common/status.h"

namespace roam::localcluster {

struct UpOptions {
  std::string name;
  int nodes = 0;
  std::string cpu_quotas;  // the raw --cpu-quota list
  std::string mem_limits;  // the raw --mem-limit list
  std::string shared;      // --shared, absolute or relative to the cwd
  std::string roam_exe;    // absolute path of the roam binary (for node-init)
  std::string roamd;       // absolute path of the roamd binary
};

// On success, a one-line summary for the user.
Result<std::string> BringUpCluster(const UpOptions& options);

Status TearDownCluster(const std::string& name);

}  // namespace roam::localcluster
