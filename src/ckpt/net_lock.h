// Holding a TCP connection still while it is carried (file_inet.cc).
//
// Between the dump of an established connection and its restore, no socket
// answers for it: a segment from the peer would be answered with a reset,
// and one our side sent would never be in the image. So every packet of the
// connection is dropped meanwhile, in both directions, by netfilter
// (nftables, through libnftables): the table `inet roam_lock` holds a set
// of connections (local address . port . remote address . port) and
// rules at the input and output hooks dropping what matches either way.
// The peer retransmits once the restored socket answers. Locks live in the
// network namespace of the caller, outlive it (a restore in another
// `roam` unlocks), and need CAP_NET_ADMIN. The table stays once made: its
// chains cost one set lookup per packet of the namespace; deleting it when
// empty could race with another dump's lock.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "image.pb.h"

namespace roam {

// `conn`: a TCP socket's InetSocket with both addresses.
Status LockConnection(const pb::InetSocket& conn);
// Lets it through again; unlocking what is not locked is not an error.
Status UnlockConnection(const pb::InetSocket& conn);

// New connections to `ipv4` (a job's own address) wait while the job
// moves: their SYNs are dropped here (table `inet roam_hold`), so that a
// client is neither accepted by a frozen listener's kernel queue at the
// source (lost with the frozen copy) nor reset by the target before the
// listener is restored there; it sends its SYN again (after 1 s, 3 s...)
// and reaches the listener wherever it runs by then. (A client on the node
// the job leaves, connecting while the address is still there, has that
// address as its source: it is refused at once, since its connection
// could never be completed once the address left.) Datagrams to the
// address are dropped meanwhile too, as a network would while the job is
// frozen: one queued in a frozen socket would refuse the move (kBusy), and
// one reaching the target before its socket is there would be answered
// "port unreachable". Holding an address held already, or letting in one
// not held, is not an error.
Status HoldNewConnections(const std::string& ipv4);
Status LetNewConnectionsIn(const std::string& ipv4);

// New clients of a tree being dumped on a node's own addresses (a server
// without an address of its own, or `roam checkpoint` of any server): its
// listeners' ports (SYNs) and its UDP ports (datagrams) are held off, on
// every address of the network namespace (table `inet roam_hold_ports`),
// so that the tree can take the clients waiting and freeze with none
// queued (a queued one refuses the dump, kBusy). The clients send again
// (SYN after 1 s, 3 s...). A hold expires by itself after 60 s.
Status HoldPorts(const std::set<uint16_t>& tcp, const std::set<uint16_t>& udp);
Status LetPortsIn(const std::set<uint16_t>& tcp, const std::set<uint16_t>& udp);

// Ends the TCP connections in TIME_WAIT whose local address is `ipv4` (a
// job's own address, arriving on a node it ran on a minute ago): the
// kernel keeps them there for 60 s after the job's side closed them, and
// while they last the job's listener cannot be bound again on that port
// unless the program set SO_REUSEADDR (EADDRINUSE at the restore). They
// guard only against late segments of connections that are over. Needs
// CAP_NET_ADMIN and a kernel with CONFIG_INET_DIAG_DESTROY. Gives how many
// it ended.
Result<int> EndTimeWait(const std::string& ipv4);

// Locks the established connections of the image in `dir` (files.img),
// before a node that did not have them takes their address (a move's
// target, node/job_address.h): a segment of the peer arriving before its
// socket is restored would otherwise be answered with a reset. Gives the
// connections locked, for UnlockConnection if the restore does not happen
// (a restore unlocks each as it finishes it). On failure none stays locked.
Result<std::vector<pb::InetSocket>> LockImageConnections(const std::string& dir);

}  // namespace roam
