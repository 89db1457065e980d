// `cluster exec NODE -- CMD...`: runs CMD inside a node, as if logged in on it.
//
// The calling process joins the node's cgroups (so its quota and memory limit
// apply to CMD), then setns()es into the IPC, UTS, network, PID and mount
// namespaces of the node's init, goes back to its working directory if that
// exists inside the node (else "/"), and forks: the child, a member of the
// node's PID namespace, execs CMD with the caller's stdin, stdout, stderr and
// environment, PATH prefixed with `extra_path` (where roamd lives, so that
// `roam cluster exec n2 -- roamd --daemon` works). The parent waits, ignoring
// SIGINT and SIGQUIT (the terminal sends them to CMD too) and passing SIGTERM
// and SIGHUP on to CMD.
//
// Returns CMD's exit status (128+N if killed by signal N; 127 if CMD was not
// found, 126 if it could not be executed, with a message on stderr), or an
// error if the node could not be entered. After a call, the calling process
// is inside the node: it must only report and exit.
// REQUIRES: root; the calling process is single-threaded (setns of a mount
// namespace refuses multi-threaded callers).
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "localcluster/cluster_state.h"

namespace roam::localcluster {

Result<int> ExecInNode(const ClusterState& cluster, const std::string& node, const std::vector<std::string>& command,
                       const std::string& extra_path);

}  // namespace roam::localcluster
