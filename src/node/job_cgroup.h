// A job's own address for the connections it makes (docs/MIGRATION.md, "An
// address of its own"). A job started with `roam run --address` runs, on
// whichever node holds it, in a cgroup (v2) of its own whose connect hook
// (a BPF program of 17 instructions, BPF_CGROUP_INET4_CONNECT) binds every
// IPv4 socket that connects into the cluster's subnet to the job's address
// before the kernel picks a source. Such a connection then moves with the
// job, as one from a socket the program bound to $ROAM_ADDRESS itself does
// (a socket bound to an address already is left as it is). Likewise its
// UDP sendmsg hook (13 instructions) gives a datagram sent with `sendto`
// into the subnet the job's address as its source, so that the replies
// find the job after it moved.
// Connections elsewhere (loopback, beyond the subnet) leave from the
// node's address, as they would without roam.
//
// Where: beside the cgroup the job's first process is in (roamd's own for a
// guest, the shell's session for a job at home), as a child of it, so that
// whatever limits the processes there (a unit's CPUQuota, MemoryMax; docs/
// LAB.md) still does. Its name, roam-job-NODE-GPID, holds the node's name:
// the nodes of a `roam cluster` share one hierarchy, and a move's source
// and target both hold one for the same job for a while.
//
// The processes of the tree are put in (clone3's CLONE_INTO_CGROUP for a
// guest spawned here, cgroup.procs for a job at home and a tree restored
// here); what they fork stays in. Root only (CAP_SYS_ADMIN, CAP_BPF).
#pragma once

#include <netinet/in.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"

namespace roam {

class JobCgroup {
 public:
  // Makes the cgroup of `gpid` on `node` beside the cgroup of `beside` (0:
  // this process), or takes over one of that name (one left by a roamd
  // that was killed, or the one `beside` is in already: a process at home
  // that left and comes back), with the hooks binding connections (and
  // datagrams) into `net`/`mask` to `address` (all in network order).
  static Result<JobCgroup> Make(const std::string& node, const std::string& gpid, in_addr address, in_addr net,
                                in_addr mask, pid_t beside = 0);

  JobCgroup() = default;
  JobCgroup(JobCgroup&&) = default;
  JobCgroup& operator=(JobCgroup&& o) noexcept;  // closes what this held
  ~JobCgroup() { (void)Close(); }

  // Detaches the hooks, then removes the cgroup if it is empty. False when
  // processes still hold it (a process that left keeps a frozen copy here
  // until the move commits): the caller removes it later
  // (RemoveEmptyCgroup). Nothing after the first call.
  bool Close();

  bool made() const { return dir_fd_.ok(); }
  const std::string& dir() const { return dir_; }
  // The cgroup's directory, for clone3's CLONE_INTO_CGROUP.
  int fd() const { return dir_fd_.get(); }

 private:
  std::string dir_;
  UniqueFd dir_fd_;
  UniqueFd prog_fd_[2];  // the connect hook, the UDP sendmsg hook
};

// Puts each of `pids` (processes, each with all its threads) into the
// cgroup at `dir`. Touches nothing else: safe on any thread.
Status EnterCgroup(const std::string& dir, const std::vector<pid_t>& pids);

// Removes the cgroup at `dir` if it holds no process any more: true once
// it is gone (or was).
bool RemoveEmptyCgroup(const std::string& dir);

// Removes the empty job cgroups of `node` beside this process's: what a
// roamd that stopped while its guests still ran left behind. Returns them,
// for the log.
std::vector<std::string> RemoveStaleJobCgroups(const std::string& node);

}  // namespace roam
