// SwimSim: a deterministic simulated network of Swim nodes, for unit tests
// and the membership benchmark. Virtual time, per-message loss and delay,
// partitions, crashes and restarts; every message is serialized and parsed
// as on the wire, so byte counts are real (plus a fixed envelope overhead).
//
// Node i is named "n<i+1>" at address "10.<i/65536>.<(i/256)%256>.<i%256>:7946".
//
// Memory: every node runs the real Swim, with its own full member table,
// but all share one MemberDirectory (names and addresses interned once), so
// a table row costs 48 bytes plus 4 in the probe order: 10,000 nodes hold
// 10^8 rows in about 5 GiB. Nothing is simulated statistically; the lean
// table changes only how rows are stored, not what the protocol does.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "cluster/swim.h"

namespace roam {

struct SimConfig {
  SwimConfig swim;
  double loss = 0.0;             // probability that one message is lost
  int64_t min_delay_ms = 1;
  int64_t max_delay_ms = 10;
  int64_t tick_ms = 50;          // how often every node's Tick runs
  bool multicast = false;        // deliver ANNOUNCE multicasts to every node
  bool publish_load = true;      // nodes publish a synthetic load every second
  uint64_t seed = 1;
  // Each node's clock counts from its own origin, uniform in [0, this):
  // hosts whose clocks do not agree (0: one clock for all).
  int64_t clock_spread_ms = 0;
};

class SwimSim {
 public:
  explicit SwimSim(const SimConfig& config);
  ~SwimSim();

  // Adds `n` nodes. With `warm`, every node starts knowing every other as
  // ALIVE (a cluster that has been up for a while); otherwise each node
  // joins through node 0 (a static peer, unless `static_peer` is false) and
  // by multicast if enabled.
  void AddNodes(int n, bool warm, bool static_peer = true);
  void RunFor(int64_t ms);

  void Crash(int i);           // stops the node: no ticks, no delivery
  void Restart(int i);         // a fresh node with the same name, higher incarnation
  void Leave(int i);           // graceful leave, then the node stops
  void Partition(const std::vector<int>& side);  // cut `side` off from the rest
  void Heal();
  // Node i handles every message `extra_ms` late (a starved CPU or a
  // saturated receive path); 0 makes it normal again.
  void SetSlow(int i, int64_t extra_ms);

  int size() const { return static_cast<int>(nodes_.size()); }
  int64_t now() const { return now_; }
  bool running(int i) const { return nodes_[i].swim != nullptr; }
  const Swim& node(int i) const { return *nodes_[i].swim; }
  Swim& mutable_node(int i) { return *nodes_[i].swim; }  // REQUIRES: running(i)
  static std::string NameOf(int i);
  static std::string AddressOf(int i);

  // State that running node `observer` holds for node `subject`
  // (MEMBER_STATE_UNSPECIFIED if unknown).
  MemberState StateSeenBy(int observer, int subject) const;
  // True when every running node holds `subject` in state `s`.
  bool AllRunningSee(int subject, MemberState s) const;
  uint64_t bytes_sent(int i) const { return nodes_[i].bytes_sent; }
  uint64_t messages_sent() const { return messages_sent_; }
  // How many times any node moved any member to DEAD so far.
  uint64_t dead_declarations() const { return dead_declarations_; }
  // How many times any node moved any member to SUSPECT so far.
  uint64_t suspicions() const { return suspicions_; }
  // How many times any node moved node `subject` to DEAD so far.
  uint64_t dead_declarations_of(int subject) const { return nodes_[subject].declared_dead; }

  // Bytes sent by all nodes so far, split by what carried them: each
  // message's own part (kind, self record, probe fields, envelope) by kind,
  // its piggybacked updates by the state they announce, its load vectors.
  struct Traffic {
    uint64_t messages_by_kind[8] = {};
    uint64_t own_by_kind[8] = {};       // index: pb::SwimMessage::Kind
    uint64_t updates_by_state[5] = {};  // index: pb::MemberState
    uint64_t loads = 0;
  };
  const Traffic& traffic() const { return traffic_; }

 private:
  struct InFlight {
    int64_t at;
    uint64_t order;
    int to;
    int from;
    std::string bytes;
    bool operator>(const InFlight& o) const { return at != o.at ? at > o.at : order > o.order; }
  };
  class Transport;
  struct Node {
    std::unique_ptr<Transport> transport;
    std::unique_ptr<Swim> swim;
    uint64_t incarnation = 0;
    uint64_t bytes_sent = 0;
    int64_t slow_ms = 0;
    uint64_t declared_dead = 0;  // by any node
    int64_t clock_origin = 0;    // added to the simulator's time for this node
  };

  void StartNode(int i, bool join_peer0);
  void Enqueue(int from, int to, const pb::SwimMessage& msg);
  void MulticastFrom(int from, const pb::SwimMessage& msg);
  void PublishLoads();

  SimConfig cfg_;
  std::mt19937_64 rng_;
  int64_t now_ = 0;
  int64_t next_load_at_ = 0;
  uint64_t order_ = 0;
  uint64_t messages_sent_ = 0;
  uint64_t dead_declarations_ = 0;
  uint64_t suspicions_ = 0;
  size_t overhead_ = 0;
  Traffic traffic_;
  std::vector<Node> nodes_;
  std::shared_ptr<MemberDirectory> directory_;  // shared by every node's Swim
  std::unordered_map<std::string, int> by_address_;
  std::set<int> cut_;  // one side of a partition
  std::priority_queue<InFlight, std::vector<InFlight>, std::greater<InFlight>> queue_;
};

}  // namespace roam
