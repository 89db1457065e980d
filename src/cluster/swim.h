// Swim: the membership and load-dissemination state machine of one node.
//
// SWIM (Das, Gupta, Motivala 2002) with the usual refinements: each protocol
// period the node probes one member (round-robin over a shuffled list); a
// missing ACK after ping_timeout makes it ask `indirect_checks` others to
// probe on its behalf (PING_REQ); no ACK by the end of the period makes the
// member SUSPECT; a suspect not refuted within the suspicion timeout
// (suspicion_mult * max(1, log10 N) periods) is DEAD. Membership changes
// ride on every message (at most max_piggyback each, each change sent about
// retransmit_mult * log10(N+1) times). Load vectors travel separately: every
// gossip_interval the node sends its own vector and a few others to
// `gossip_fanout` random members, so per-node traffic does not grow with N.
//
// Joining: ANNOUNCE (multicast or to static peers) is answered with SYNC, the
// whole table in pages. Partitions heal because a node periodically
// announces itself to one member it believes dead, and because any message
// from a member believed dead is answered with a short push-pull SYNC (only
// the two records concerned), which lets both sides see and refute their
// DEAD entries without sending whole tables.
//
// Time is a parameter (milliseconds, any origin): the same code runs in the
// daemon and in the deterministic simulator. Not thread-safe; one event loop
// owns it. All input must have passed ValidateSwimMessage().
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "cluster/member.h"
#include "gossip.pb.h"

namespace roam {

struct SwimConfig {
  int64_t probe_interval_ms = 500;
  int64_t ping_timeout_ms = 200;
  int indirect_checks = 3;
  double suspicion_mult = 3;
  double retransmit_mult = 4;
  int max_piggyback = 6;
  int64_t gossip_interval_ms = 1000;
  int gossip_fanout = 3;
  int max_loads_per_gossip = 8;
  int64_t reconnect_interval_ms = 3000;  // announce to one DEAD member
  int64_t announce_interval_ms = 5000;   // multicast announce; 0 = never
  int64_t join_retry_ms = 1000;          // static peers, while alone
  int64_t dead_reap_ms = 24 * 3600 * 1000LL;  // forget DEAD/LEFT members after this
  int sync_page_members = 8;
};

// Where a node's messages go. The daemon seals them into UDP datagrams; the
// simulator queues them with loss and delay.
class SwimTransport {
 public:
  virtual ~SwimTransport() = default;
  virtual void Send(const std::string& address, const pb::SwimMessage& msg) = 0;
  virtual void Multicast(const pb::SwimMessage& msg) = 0;
};

class Swim {
 public:
  // REQUIRES: transport outlives this object. `incarnation` must exceed any
  // this node name used before (the daemon uses the wall clock in ms).
  Swim(const SwimConfig& config, std::string name, std::string address, uint64_t incarnation,
       SwimTransport* transport, uint64_t seed);

  // Announces this node (multicast if `multicast`, and to each static peer).
  void Start(int64_t now, bool multicast, std::vector<std::string> static_peers);
  void Tick(int64_t now);
  void Receive(const std::string& from_address, const pb::SwimMessage& msg, int64_t now);
  // Tells every live member this node is leaving. The node stays silent after.
  void Leave(int64_t now);
  // Replaces this node's published load vector (stamp and node are set here).
  void SetSelfLoad(const pb::LoadVector& v, int64_t now);
  // Learns members from a snapshot without gossiping about them (a
  // simulator's warm start). Known names are left as they are.
  void Seed(const std::vector<pb::MemberUpdate>& snapshot, int64_t now);

  const std::string& name() const { return self_name_; }
  uint64_t incarnation() const { return members_.at(self_name_).incarnation; }
  // Every member this node knows, itself included, by name.
  const std::map<std::string, Member>& members() const { return members_; }
  size_t LiveCount() const { return live_count_; }  // ALIVE + SUSPECT, self included

  // Called after a member's state changes (old state, member now).
  std::function<void(MemberState, const Member&)> on_state_change;

 private:
  struct Probe {
    std::string target;
    uint32_t id = 0;
    int64_t sent_at = 0;
    bool indirect_sent = false;
  };
  struct Relay {
    std::string origin_address;
    uint32_t origin_id = 0;
    int64_t started_at = 0;
  };
  struct Pending {
    pb::MemberUpdate update;
    int transmits = 0;
  };

  pb::SwimMessage NewMessage(pb::SwimMessage::Kind kind);
  void SendWithPiggyback(const std::string& address, pb::SwimMessage msg);
  void ApplyUpdate(const pb::MemberUpdate& u, int64_t now);
  void ApplyLoad(const pb::LoadVector& v, int64_t now);
  void Refute(uint64_t accused_incarnation);
  void SetState(Member& m, MemberState s, int64_t now);
  void TrackState(const Member& m, MemberState old);  // keeps suspects_, down_, live_count_
  Member& Insert(const pb::MemberUpdate& u, int64_t now);
  void Broadcast(const pb::MemberUpdate& u);
  void StartProbe(int64_t now);
  void CheckProbe(int64_t now);
  void CheckSuspects(int64_t now);
  void SendGossip(int64_t now);
  // The whole table, in pages: the answer to a join.
  void SendSync(const std::string& address, int64_t now);
  // A one-message SYNC about `peer` only, for two nodes that may hold each
  // other dead (partitions, reconnects); replies in kind if reply_wanted.
  void SendPushPull(const std::string& address, const std::string& peer, int64_t now, bool reply_wanted = true);
  // Rate limit of SYNCs to one member: at most one per reconnect interval.
  bool SyncAllowed(const std::string& member, int64_t now);
  void Announce(const std::string& address, bool reply_wanted);
  void ReconnectDead(int64_t now);
  void Reap(int64_t now);
  pb::LoadVector LoadForWire(const Member& m, int64_t now) const;
  // Up to k distinct ALIVE members other than self and `exclude`, sampled
  // from the current probe round (O(k), whatever the table size).
  std::vector<const Member*> RandomLive(int k, const std::string& exclude);
  void RebuildProbeOrder();
  int64_t SuspicionTimeout() const;
  int RetransmitLimit() const;

  SwimConfig cfg_;
  std::string self_name_;
  SwimTransport* transport_;
  std::mt19937_64 rng_;
  std::map<std::string, Member> members_;
  std::map<std::string, Pending> broadcasts_;  // by member name: newest update only
  std::vector<std::string> probe_order_;
  size_t probe_pos_ = 0;
  std::optional<Probe> probe_;
  std::map<uint32_t, Relay> relays_;
  std::map<std::string, int64_t> last_sync_to_;  // push-pull rate limit per member
  std::map<std::string, int64_t> suspects_;      // SUSPECT members, since when
  std::map<std::string, int64_t> down_;          // DEAD and LEFT members, since when
  size_t live_count_ = 1;
  uint32_t next_probe_id_ = 1;
  uint64_t load_stamp_ = 0;
  int64_t next_probe_at_ = 0, next_gossip_at_ = 0, next_reconnect_at_ = 0;
  int64_t next_announce_at_ = 0, next_join_at_ = 0;
  bool multicast_ = false;
  bool left_ = false;
  std::vector<std::string> static_peers_;
};

}  // namespace roam
