// Swim: the membership and load-dissemination state machine of one node.
//
// SWIM (Das, Gupta, Motivala 2002) with Lifeguard (Dadgar, Phillips, Currey
// 2018) and the usual refinements. Each protocol period the node probes one
// member (round-robin over an order all nodes share, each from its own
// place in it, so every member is probed once a period); a missing ACK after
// ping_timeout makes it ask `indirect_checks` others (one more per decade
// of N above 100) to probe on its behalf (PING_REQ; a helper pings twice if
// the first goes unanswered) and ping the target once more itself; no ACK
// by the end of the period makes the member SUSPECT; a suspect not refuted
// in time is DEAD.
//
// Lifeguard, each part switchable for measurement (SwimConfig):
//  - local health: a counter in [0, max_local_health] rises when one of our
//    probes fails and when we must refute a suspicion of ourselves, falls
//    when a probe is answered; probe interval, ping timeout and the
//    suspicion timeouts it runs are multiplied by (counter + 1). A node
//    that is itself slow or cut off thus probes less and waits longer
//    before it accuses anyone.
//  - dogpile suspicion timeouts: a suspicion starts at suspicion_max_mult x
//    the minimum and shrinks logarithmically to the minimum
//    (suspicion_mult * max(1, log10 N) periods) as distinct other nodes'
//    SUSPECT messages confirm it (suspicion_confirmations of them, at most
//    ceil(log10 N): 1 at 10 members, 2 up to 100). A lone
//    false accusation thus waits long enough for the refutation. A node
//    that hears of a suspicion short of confirmations probes the suspect
//    itself at its next-but-one probe (every other probe is free for this).
//  - buddy system: a PING to a member we hold SUSPECT carries that
//    suspicion first, so the suspect hears of it at the next probe; and
//    every other probe goes to the oldest suspicion we raised alone, so one
//    raised while we were cut off still reaches its subject.
//
// Dissemination: membership changes ride on every message, filled up to
// max_message_bytes of body; fresh news first, then repeated refutations
// and DEAD/LEFT, then repeated SUSPECT; each update is sent
// retransmit_mult * ceil(log10(N+1)) times.
//
// Load vectors travel separately: every gossip_interval the node sends its
// own vector and a few from its load sample to `gossip_fanout` random
// members. A node holds the vectors of at most load_sample_size peers (with
// their ages): a fresher vector from outside the sample replaces the stalest
// one, so the sample renews itself as gossip arrives from random peers, and
// per-node memory and traffic do not grow with N.
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

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "cluster/member.h"
#include "cluster/member_table.h"
#include "gossip.pb.h"

namespace roam {

struct SwimConfig {
  int64_t probe_interval_ms = 500;
  int64_t ping_timeout_ms = 200;
  int indirect_checks = 4;
  // One more helper per decade of N above 100 (4, 5 at 1,000, 6 at 10,000):
  // the cluster-wide rate of false suspicions, each of which costs every
  // node a refutation to carry, must not grow with N.
  bool helpers_by_size = true;
  // Probe targets: every node walks one order shared by all (a hash of the
  // names), each from its own place, so that in every protocol period each
  // member is probed by exactly one other; else each node walks a list it
  // shuffled itself. The sharing needs the nodes' `now` to count periods
  // from one origin (a wall clock); with unrelated origins each node still
  // probes every member once per n-1 periods.
  bool shared_probe_order = true;
  bool retry_direct = true;  // a second direct PING alongside the indirect ones
  // A helper asked to probe (PING_REQ) pings the target once more if it has
  // no ACK after half the ping timeout.
  bool helper_retry = true;
  // Suspicion timeout: at least suspicion_mult * max(1, log10 N) periods.
  double suspicion_mult = 3;
  // Lifeguard's dogpile: start at suspicion_max_mult times that minimum,
  // down to it after suspicion_confirmations distinct other suspecters (at
  // most one per decade of N: ceil(log10 N)).
  bool dogpile = true;
  double suspicion_max_mult = 6;
  int suspicion_confirmations = 3;
  bool suspicion_confirmations_by_size = true;  // at most ceil(log10 N) of them
  // Lifeguard's local health awareness.
  bool local_health = true;
  int max_local_health = 8;
  // Lifeguard's buddy system.
  bool buddy = true;
  // Dissemination.
  double retransmit_mult = 4;
  int max_message_bytes = 1200;  // body; the sealed datagram adds ~90 B
  int max_piggyback = 64;        // updates per message (the validator's limit)
  bool priority_dissemination = true;  // else fewest transmissions first only
  // Load vectors.
  int64_t gossip_interval_ms = 1000;
  // GossipSoon brings a gossip forward, never sooner than this after the
  // last one (a burst of changes costs one message per peer).
  int64_t gossip_min_gap_ms = 100;
  int gossip_fanout = 3;
  int max_loads_per_gossip = 8;
  int load_sample_size = 64;         // peers whose load vector a node holds
  int64_t load_max_age_ms = 30000;   // older vectors are dropped
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
  // `directory`: names and addresses, shared by the simulator's nodes (see
  // member_table.h); null for a private one.
  Swim(const SwimConfig& config, std::string name, std::string address, uint64_t incarnation,
       SwimTransport* transport, uint64_t seed, std::shared_ptr<MemberDirectory> directory = nullptr);

  // Announces this node (multicast if `multicast`, and to each static peer).
  void Start(int64_t now, bool multicast, std::vector<std::string> static_peers);
  void Tick(int64_t now);
  void Receive(const std::string& from_address, const pb::SwimMessage& msg, int64_t now);
  // Tells every live member this node is leaving. The node stays silent after.
  void Leave(int64_t now);
  // Replaces this node's published load vector (stamp and node are set here).
  void SetSelfLoad(const pb::LoadVector& v, int64_t now);
  // Sends this node's vector at the next Tick rather than at the end of the
  // gossip interval, gossip_min_gap_ms after the last gossip at the soonest:
  // for a change the others should see now (a process arrived or left, so
  // that `roam nodes` does not show it on two nodes for a second).
  void GossipSoon(int64_t now) {
    next_gossip_at_ = std::min(next_gossip_at_, std::max(now, last_gossip_at_ + cfg_.gossip_min_gap_ms));
  }
  // This node's load vector as gossip carries it (empty before the first).
  pb::LoadVector SelfLoad(int64_t now) const;
  // A peer's vector learnt outside gossip (a reply to this node): taken as
  // a gossiped one is, if newer than the one held.
  void LearnLoad(const pb::LoadVector& v, int64_t now) { ApplyLoad(v, now); }
  // Learns members from a snapshot without gossiping about them (a
  // simulator's warm start). Known names are left as they are.
  void Seed(const std::vector<pb::MemberUpdate>& snapshot, int64_t now);

  const std::string& name() const { return members_.directory().name(self_); }
  uint64_t incarnation() const { return members_.Row(self_).incarnation; }
  // Every member this node knows, itself included, by name.
  const MemberTable& members() const { return members_; }
  size_t LiveCount() const { return live_count_; }  // ALIVE + SUSPECT, self included
  // Peers whose load vectors this node holds (Member::load set), at most
  // load_sample_size.
  const std::vector<MemberId>& load_sample() const { return load_sample_; }
  // Lifeguard's local health multiplier, 0 (healthy) .. max_local_health.
  int local_health() const { return local_health_; }
  // Updates waiting to be piggybacked.
  size_t pending_updates() const { return broadcasts_.size(); }

  // Called after a member's state changes (old state, member now).
  std::function<void(MemberState, const Member&)> on_state_change;

 private:
  struct Probe {
    MemberId target = kNoMember;
    uint32_t id = 0;
    int64_t sent_at = 0;
    int64_t timeout = 0;  // ping timeout, scaled by local health
    int64_t period = 0;   // probe interval, scaled by local health
    bool indirect_sent = false;
  };
  struct Relay {
    std::string origin_address;
    uint32_t origin_id = 0;
    int64_t started_at = 0;
    std::string origin_name;
    std::string target_address;
    bool retried = false;
  };
  // Priority in the piggyback queue: lower first.
  using QueueKey = std::tuple<int, int, MemberId>;  // (class, transmits, member)
  struct Pending {
    pb::MemberUpdate update;
    int transmits = 0;
    QueueKey key;
  };
  struct Suspicion {
    int64_t since = 0;
    int64_t deadline = 0;
    std::vector<MemberId> confirmed_by;  // distinct suspecters other than the first
    MemberId first = kNoMember;
    bool checked = false;  // we probed the suspect ourselves since
  };

  MemberDirectory& dir() { return members_.directory(); }
  Member& self() { return members_.Row(self_); }
  pb::SwimMessage NewMessage(pb::SwimMessage::Kind kind);
  // Sends `msg` with as many pending updates as fit; `first`, if set, goes
  // before them (the buddy system's suspicion).
  void SendWithPiggyback(const std::string& address, pb::SwimMessage msg, const pb::MemberUpdate* first = nullptr);
  void ApplyUpdate(const pb::MemberUpdate& u, int64_t now);
  void ApplyLoad(const pb::LoadVector& v, int64_t now);
  void DropLoad(MemberId id);
  void Refute(uint64_t accused_incarnation);
  void SetState(MemberId id, MemberState s, int64_t now);
  void TrackState(MemberId id, MemberState old);  // keeps suspects_, down_, live_count_
  Member& Insert(MemberId id, const pb::MemberUpdate& u, int64_t now);
  void Broadcast(MemberId id, const pb::MemberUpdate& u);
  void Suspect(MemberId id, int64_t now);  // our own probe of `id` failed
  // Counts another node's suspicion of `id`; true if it was new.
  bool Confirm(MemberId id, MemberId suspecter);
  void StartProbe(int64_t now);
  void ProbeMember(MemberId id, int64_t now);
  // A PING to `id`; to a suspect (buddy system) it carries the suspicion first.
  void SendPing(MemberId id, uint32_t probe_id);
  void CheckProbe(int64_t now);
  // Forgets relays older than a period; retries a relay's PING (helper_retry).
  void TickRelays(int64_t now);
  void CheckSuspects(int64_t now);
  void SendGossip(int64_t now);
  // The whole table, in pages: the answer to a join.
  void SendSync(const std::string& address, int64_t now);
  // A one-message SYNC about `peer` only, for two nodes that may hold each
  // other dead (partitions, reconnects); replies in kind if reply_wanted.
  void SendPushPull(const std::string& address, MemberId peer, int64_t now, bool reply_wanted = true);
  // Rate limit of SYNCs to one member: at most one per reconnect interval.
  bool SyncAllowed(MemberId member, int64_t now);
  void Announce(const std::string& address, bool reply_wanted);
  void ReconnectDead(int64_t now);
  void Reap(int64_t now);
  pb::LoadVector LoadForWire(const Member& m, int64_t now) const;
  // Up to k distinct ALIVE members other than self and `exclude`, sampled
  // from the current probe round (O(k), whatever the table size).
  std::vector<MemberId> RandomLive(int k, MemberId exclude);
  // Round-robin target in the order all nodes share (shared_probe_order).
  void ProbeInSharedOrder(int64_t now);
  // probe_order_ anew: shared, hashed by `epoch`, or shuffled per node.
  void RebuildProbeOrder(uint64_t epoch);
  void AdjustHealth(int delta);
  int64_t Scaled(int64_t ms) const { return ms * (local_health_ + 1); }
  int64_t MinSuspicionTimeout() const;
  int64_t SuspicionTimeout(const Suspicion& s) const;
  // Dogpile: distinct confirmations that bring a suspicion to the minimum.
  int ConfirmationsExpected() const;
  int IndirectChecks() const;
  int RetransmitLimit() const;

  SwimConfig cfg_;
  MemberTable members_;
  MemberId self_;
  SwimTransport* transport_;
  std::mt19937_64 rng_;
  std::unordered_map<MemberId, Pending> broadcasts_;  // by member: newest update only
  std::set<QueueKey> queue_;                          // the same, in sending order
  // Live members: in the shared order (self included, at self_pos_), or
  // shuffled by this node (self left out, walked at probe_pos_).
  std::vector<MemberId> probe_order_;
  size_t probe_pos_ = 0;
  size_t self_pos_ = 0;
  uint64_t probe_epoch_ = 0;
  bool probe_order_stale_ = true;  // the live set changed since the order was built
  std::optional<Probe> probe_;
  std::map<uint32_t, Relay> relays_;
  std::unordered_map<MemberId, int64_t> last_sync_to_;  // push-pull rate limit per member
  std::map<MemberId, Suspicion> suspects_;              // SUSPECT members
  std::map<MemberId, int64_t> down_;                    // DEAD and LEFT members, since when
  std::vector<MemberId> load_sample_;
  size_t live_count_ = 1;
  int local_health_ = 0;
  uint32_t next_probe_id_ = 1;
  uint64_t probes_started_ = 0;
  uint64_t load_stamp_ = 0;
  int64_t next_probe_at_ = 0, next_gossip_at_ = 0, next_reconnect_at_ = 0;
  int64_t last_gossip_at_ = INT64_MIN / 2;
  int64_t next_announce_at_ = 0, next_join_at_ = 0;
  bool multicast_ = false;
  bool left_ = false;
  std::vector<std::string> static_peers_;
};

}  // namespace roam
