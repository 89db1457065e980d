// An address of its own for a job that asks (`roam run --address`): one
// IPv4 address that goes wherever the job goes, so that a TCP connection
// made to it, or from it (into the cluster's subnet: job_cgroup.h), moves
// with the job and keeps working with no relay through the node it left
// (docs/MIGRATION.md, "An address of its own").
//
// The addresses come from the cluster's pool (roamd.conf `job_addresses`,
// a range inside the subnet the nodes share; `roam cluster` gives the
// upper half of its /24 that its nodes do not use). The home chooses one when the job starts: not held by another of
// its own jobs, not answering an ARP probe. The node where the job runs
// holds it: a /32 on the interface of that subnet, announced by gratuitous
// ARP (iface_address.h). A move takes it off the source once the tree is
// dumped (put back if the move fails) and puts it on the target before the
// restore, after the tree's connections are locked there (net_lock.h), so
// that no segment of the peer finds the address without its socket.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "node/job_cgroup.h"
#include "image.pb.h"

namespace roam {

// A CIDR ("10.213.7.128/25": not its first nor last address) or a range
// ("10.213.7.200-10.213.7.253"). An empty one gives no address.
struct AddressPool {
  uint32_t first = 0, last = 0;  // host order; the pool's usable range
  bool empty() const { return last < first || last == 0; }
};

Result<AddressPool> ParseAddressPool(const std::string& cidr);
bool InPool(const AddressPool& pool, in_addr a);
// The pool's addresses not in `taken`, in an order that starts at a place
// given by `seed` (so that homes choosing at once rarely try the same).
std::vector<in_addr> PoolCandidates(const AddressPool& pool, const std::set<uint32_t>& taken, uint64_t seed);

// Removes from this node's interfaces every /32 of `pool`: addresses a
// roamd that stopped without taking them down (killed, crashed) left on
// it, which no job here holds any more. Returns them, for the log.
std::vector<std::string> RemoveStaleJobAddresses(const AddressPool& pool);

// The job addresses this node holds now, by GPID: one owner, roamd's loop.
// The kernel's address goes with the entry; whatever is held when this
// goes (roamd stops) is removed from the node.
class JobAddresses {
 public:
  JobAddresses() = default;
  ~JobAddresses();
  JobAddresses(const JobAddresses&) = delete;
  JobAddresses& operator=(const JobAddresses&) = delete;

  // This node's name, for the names of the jobs' cgroups (job_cgroup.h).
  void set_node(std::string node) { node_ = std::move(node); }

  // Puts `address` on this node for `gpid` (and announces it), and makes
  // the job's cgroup, which binds its connections into the subnet to it,
  // beside the cgroup of `beside` (0: roamd's). Without the cgroup (no
  // cgroup2, no BPF here) the address is held all the same and the job's
  // connections leave from the node's address unless it binds them: one
  // warning says so.
  Status Hold(const std::string& gpid, const std::string& address, pid_t beside = 0);
  // Takes `gpid`'s address off this node, if it holds one, and lets its
  // cgroup go (removed once its processes are gone: Sweep) unless
  // `keep_cgroup`: the tree that left is still here, frozen, until the move
  // commits, and a Hold that brings the address back finds it as it was.
  void Release(const std::string& gpid, bool keep_cgroup = false);
  bool holds(const std::string& gpid) const { return held_.count(gpid) != 0; }
  std::set<uint32_t> held_addresses() const;
  // The job's cgroup here: its directory (for EnterCgroup) and an fd of it
  // (for CLONE_INTO_CGROUP); "" and -1 without one.
  std::string cgroup_dir(const std::string& gpid) const;
  int cgroup_fd(const std::string& gpid) const;
  // Removes the cgroups let go while processes still held them, now empty.
  void Sweep();

 private:
  std::string node_;
  std::map<std::string, in_addr> held_;
  std::map<std::string, JobCgroup> cgroups_;  // by GPID, for each held address that has one
  std::vector<std::string> lingering_;        // cgroups let go, not yet empty
  bool warned_ = false;
};

// A move's source side of it: new connections to the address wait from
// just before the freeze (Freezing: their SYNs, and datagrams to it, are
// dropped, net_lock.h; the tree then takes what waited: backlog_wait.h);
// the address leaves this node once the tree is dumped (Leave) and comes
// back if the tree resumes here (Back), before it runs, letting new
// connections in again; Done when the move ends either way. A job without
// one: its ports are held while it freezes (Freezing), let go at Done.
class LeavingAddress {
 public:
  LeavingAddress(JobAddresses* book, std::string gpid, std::string address)
      : book_(book), gpid_(std::move(gpid)), address_(std::move(address)) {}
  // Before the tree of `root` is frozen. A job without an address of its
  // own has its listeners' and UDP sockets' ports held instead (net_lock.h
  // HoldPorts), on this node's addresses, which stay here: the clients
  // waiting are taken first, and new ones come back to this node.
  void Freezing(pid_t root);
  void Leave();
  void Back();
  void Done();

 private:
  JobAddresses* book_;
  std::string gpid_, address_;
  bool left_ = false;
  bool holding_new_ = false;
  std::set<uint16_t> held_tcp_, held_udp_;  // ports held (a job without an address)
};

// A move's target side of it: new connections to the address and the
// tree's established ones are held here first (net_lock.h), then the
// address is put up (Hold), all before the restore; Running once the tree
// runs lets new connections in; Undo if the tree does not run here after
// all (a restore unlocks each connection itself as it finishes it).
class ArrivingAddress {
 public:
  // `beside`: where the job's cgroup goes (JobAddresses::Hold).
  Status Arrive(JobAddresses* book, const std::string& gpid, const std::string& address, const std::string& image_dir,
                pid_t beside = 0);
  void Running();
  void Undo();

 private:
  JobAddresses* book_ = nullptr;
  std::string gpid_, address_;
  std::vector<pb::InetSocket> locked_;
};

}  // namespace roam
