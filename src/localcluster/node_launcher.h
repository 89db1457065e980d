// NodeLaunch: the host side of starting one node. Launch() forks a child that
// unshare()s network, mount, PID, UTS and IPC namespaces and forks again; the
// grandchild (PID 1 of the new PID namespace, detached in its own session,
// stdio on /dev/null) execs `<exe> cluster node-init ...` (node_init.h) and
// waits on its go pipe. Between Launch() and Release() the caller puts
// init_pid() into the node's cgroups and moves the veth peer into its network
// namespace; then AwaitReport() reads the init's one-line verdict.
//
// Destroying a NodeLaunch that was never released closes the go pipe, which
// makes the waiting init exit. Not copyable. Not thread-safe.
#pragma once

#include <string>

#include "common/status.h"
#include "localcluster/node_init.h"

namespace roam::localcluster {

class NodeLaunch {
 public:
  // `exe` is the roam binary to exec (an absolute path).
  static Result<NodeLaunch> Launch(const std::string& exe, const NodeInitConfig& config);

  NodeLaunch(NodeLaunch&& other) noexcept;
  NodeLaunch& operator=(NodeLaunch&& other) noexcept;
  NodeLaunch(const NodeLaunch&) = delete;
  NodeLaunch& operator=(const NodeLaunch&) = delete;
  ~NodeLaunch();

  int init_pid() const { return init_pid_; }  // host PID

  // Tells the init to set itself up. REQUIRES: called at most once.
  Status Release();
  // Waits up to timeout_ms for the init's report: ok once roamd has been
  // exec'd, else the init's own error (or that it died or stayed silent).
  Status AwaitReport(int timeout_ms);

 private:
  NodeLaunch(int init_pid, int go_fd, int report_fd) : init_pid_(init_pid), go_fd_(go_fd), report_fd_(report_fd) {}
  void CloseFds();

  int init_pid_ = 0;
  int go_fd_ = -1;      // write end of the init's fd 3
  int report_fd_ = -1;  // read end of the init's fd 4
};

}  // namespace roam::localcluster
