// Lifeguard's three refinements and dissemination by priority and bytes,
// each checked on one Swim node fed by hand (no network), and the load
// sample on a small simulated cluster.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "cluster/swim.h"
#include "cluster/swim_sim.h"

namespace roam {
namespace {

class Capture : public SwimTransport {
 public:
  struct Sent {
    std::string to;
    pb::SwimMessage msg;
  };
  void Send(const std::string& address, const pb::SwimMessage& msg) override { sent.push_back({address, msg}); }
  void Multicast(const pb::SwimMessage&) override {}
  std::vector<Sent> sent;
};

constexpr uint64_t kInc = 1000;

std::string Peer(int i) { return "p" + std::to_string(i); }
std::string PeerAddress(int i) { return "10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ":7946"; }

pb::MemberUpdate Update(int i, MemberState s, uint64_t inc = kInc, const std::string& by = "") {
  pb::MemberUpdate u;
  u.set_name(Peer(i));
  u.set_address(PeerAddress(i));
  u.set_incarnation(inc);
  u.set_state(s);
  if (!by.empty()) u.set_suspected_by(by);
  return u;
}

// A node "me" that knows peers p1..pN as ALIVE.
struct Node {
  Node(SwimConfig cfg, int peers) : swim(cfg, "me", "10.9.9.9:7946", kInc, &net, 7) {
    std::vector<pb::MemberUpdate> snapshot;
    for (int i = 1; i <= peers; ++i) snapshot.push_back(Update(i, pb::ALIVE));
    swim.Seed(snapshot, 0);
  }
  // A GOSSIP from peer `from` carrying `updates`.
  void Hear(int from, const std::vector<pb::MemberUpdate>& updates, int64_t now) {
    pb::SwimMessage m;
    m.set_kind(pb::SwimMessage::GOSSIP);
    *m.mutable_self() = Update(from, pb::ALIVE);
    for (const auto& u : updates) *m.add_updates() = u;
    swim.Receive(PeerAddress(from), m, now);
  }
  MemberState StateOf(int i) const { return swim.members().at(Peer(i)).state; }

  Capture net;
  Swim swim;
};

// 21 members: min timeout 3 * log10(21) periods = 1,983 ms, max 6x that.
constexpr int kPeers = 20;
constexpr int64_t kMin = 1983, kMax = 6 * kMin;

// Dogpile alone: this node's own probes go unanswered, which local health
// would count against it and stretch its timeouts.
SwimConfig DogpileOnly() {
  SwimConfig c;
  c.local_health = false;
  return c;
}

TEST(SwimDogpile, LoneSuspicionWaitsTheLongTimeout) {
  Node n(DogpileOnly(), kPeers);
  n.Hear(2, {Update(1, pb::SUSPECT, kInc, Peer(2))}, 0);
  ASSERT_EQ(n.StateOf(1), pb::SUSPECT);
  n.swim.Tick(kMin + 500);
  EXPECT_EQ(n.StateOf(1), pb::SUSPECT) << "a lone suspicion must outlast the minimum timeout";
  n.swim.Tick(kMax + 100);
  EXPECT_EQ(n.StateOf(1), pb::DEAD);
}

TEST(SwimDogpile, IndependentConfirmationsShrinkTheTimeoutToTheMinimum) {
  // 21 members: ceil(log10 21) = 2 confirmations are expected.
  Node n(DogpileOnly(), kPeers);
  n.Hear(2, {Update(1, pb::SUSPECT, kInc, Peer(2))}, 0);
  n.Hear(3, {Update(1, pb::SUSPECT, kInc, Peer(3))}, 10);
  n.Hear(3, {Update(1, pb::SUSPECT, kInc, Peer(3))}, 25);  // the same suspecter twice counts once
  n.swim.Tick(kMin + 100);
  EXPECT_EQ(n.StateOf(1), pb::SUSPECT) << "one confirmation of two expected";
  n.Hear(4, {Update(1, pb::SUSPECT, kInc, Peer(4))}, kMin + 150);
  n.swim.Tick(kMin + 200);
  EXPECT_EQ(n.StateOf(1), pb::DEAD);
}

// How many distinct confirmations bring a suspicion of p1 (raised by p2)
// down to the minimum timeout, in a cluster of `peers` + 1 members.
int ConfirmationsToReachTheMinimum(SwimConfig cfg, int peers) {
  const int64_t min_ms = static_cast<int64_t>(3 * std::max(1.0, std::log10(peers + 1.0)) * 500);
  for (int c = 0; c <= 4; ++c) {
    Node n(cfg, peers);
    n.Hear(2, {Update(1, pb::SUSPECT, kInc, Peer(2))}, 0);
    for (int i = 0; i < c; ++i) n.Hear(3 + i, {Update(1, pb::SUSPECT, kInc, Peer(3 + i))}, 10 + i);
    n.swim.Tick(min_ms + 100);
    if (n.StateOf(1) == pb::DEAD) return c;
  }
  return -1;
}

TEST(SwimDogpile, ConfirmationsExpectedGrowOneADecadeOfTheClusterUpToThree) {
  EXPECT_EQ(ConfirmationsToReachTheMinimum(DogpileOnly(), 9), 1);  // 10 members
  EXPECT_EQ(ConfirmationsToReachTheMinimum(DogpileOnly(), 99), 2);
  EXPECT_EQ(ConfirmationsToReachTheMinimum(DogpileOnly(), 2000), 3);
  SwimConfig fixed = DogpileOnly();
  fixed.suspicion_confirmations_by_size = false;
  EXPECT_EQ(ConfirmationsToReachTheMinimum(fixed, 9), 3);
}

TEST(SwimDogpile, ANewConfirmationIsGossipedOn) {
  Node n(DogpileOnly(), kPeers);
  n.Hear(2, {Update(1, pb::SUSPECT, kInc, Peer(2))}, 0);
  n.Hear(3, {Update(1, pb::SUSPECT, kInc, Peer(3))}, 10);
  n.net.sent.clear();
  n.swim.Tick(20);  // probes someone: the PING carries pending news
  ASSERT_FALSE(n.net.sent.empty());
  bool carried = false;
  for (const auto& u : n.net.sent[0].msg.updates()) {
    carried |= u.name() == Peer(1) && u.state() == pb::SUSPECT && u.suspected_by() == Peer(3);
  }
  EXPECT_TRUE(carried);
}

TEST(SwimDogpile, WithoutDogpileTheMinimumAppliesAtOnce) {
  SwimConfig cfg = DogpileOnly();
  cfg.dogpile = false;
  Node n(cfg, kPeers);
  n.Hear(2, {Update(1, pb::SUSPECT, kInc, Peer(2))}, 0);
  n.swim.Tick(kMin + 100);
  EXPECT_EQ(n.StateOf(1), pb::DEAD);
}

// Counts PINGs sent between `from` and `to` by a node none of whose 200
// peers ever answers.
int PingsOfUnansweredNode(bool local_health, int64_t from, int64_t to, int* health) {
  SwimConfig cfg;
  cfg.local_health = local_health;
  Node n(cfg, 200);
  int pings = 0;
  for (int64_t t = 0; t <= to; t += 50) {
    n.net.sent.clear();
    n.swim.Tick(t);
    for (const auto& s : n.net.sent) pings += t >= from && s.msg.kind() == pb::SwimMessage::PING;
  }
  *health = n.swim.local_health();
  return pings;
}

TEST(SwimLocalHealth, ANodeWhoseProbesAllFailSlowsDown) {
  int health_on = 0, health_off = 0;
  const int with = PingsOfUnansweredNode(true, 20000, 30000, &health_on);
  const int without = PingsOfUnansweredNode(false, 20000, 30000, &health_off);
  EXPECT_GE(health_on, SwimConfig{}.max_local_health - 2);  // re-probes of its own suspects do not count
  EXPECT_EQ(health_off, 0);
  // Unhealthy: one probe per 9 periods (4.5 s) instead of one per period.
  EXPECT_LE(with * 4, without) << with << " pings with local health, " << without << " without";
}

TEST(SwimLocalHealth, AnsweredProbesBringHealthBack) {
  Node n(SwimConfig{}, 5);
  for (int64_t t = 0; t <= 6000; t += 50) n.swim.Tick(t);  // a few failed probes
  const int sick = n.swim.local_health();
  ASSERT_GT(sick, 0);
  // Now answer every probe.
  for (int64_t t = 6050; t <= 60000; t += 50) {
    n.net.sent.clear();
    n.swim.Tick(t);
    for (const auto& s : n.net.sent) {
      if (s.msg.kind() != pb::SwimMessage::PING) continue;
      pb::SwimMessage ack;
      ack.set_kind(pb::SwimMessage::ACK);
      ack.set_probe_id(s.msg.probe_id());
      for (int i = 1; i <= 5; ++i) {
        if (PeerAddress(i) != s.to) continue;
        ack.set_target(Peer(i));
        *ack.mutable_self() = Update(i, pb::ALIVE, kInc + 5);
        n.swim.Receive(s.to, ack, t + 10);
      }
    }
  }
  EXPECT_EQ(n.swim.local_health(), 0) << "was " << sick;
}

// The PINGs `n` sends to p1 in the next `ms`, ticking from `t`.
std::vector<pb::SwimMessage> PingsTo(Node& n, int peer, int64_t t, int64_t ms) {
  std::vector<pb::SwimMessage> out;
  for (int64_t now = t; now < t + ms; now += 50) {
    n.net.sent.clear();
    n.swim.Tick(now);
    for (const auto& s : n.net.sent) {
      if (s.to == PeerAddress(peer) && s.msg.kind() == pb::SwimMessage::PING) out.push_back(s.msg);
    }
  }
  return out;
}

// The suspicion of p1 is crowded out of the piggyback queue by 60 fresh
// departures; the buddy system still puts it first in a PING to p1.
bool ProbeOfSuspectCarriesTheSuspicion(bool buddy) {
  SwimConfig cfg;
  cfg.buddy = buddy;
  cfg.local_health = false;
  Node n(cfg, 3);
  n.Hear(2, {Update(1, pb::SUSPECT, kInc, Peer(2))}, 0);
  for (int64_t t = 0; t < 200; t += 50) n.swim.Tick(t);  // sends it at least once
  std::vector<pb::MemberUpdate> departures;
  for (int i = 100; i < 160; ++i) departures.push_back(Update(i, pb::LEFT));
  n.Hear(3, departures, 250);
  auto pings = PingsTo(n, 1, 300, 8000);
  if (pings.empty()) return false;
  const auto& ups = pings[0].updates();
  return ups.size() > 0 && ups[0].name() == Peer(1) && ups[0].state() == pb::SUSPECT;
}

TEST(SwimBuddy, AProbeOfASuspectTellsItOfTheSuspicionFirst) {
  EXPECT_TRUE(ProbeOfSuspectCarriesTheSuspicion(true));
  EXPECT_FALSE(ProbeOfSuspectCarriesTheSuspicion(false)) << "the scenario must crowd the suspicion out";
}

// PING_REQs `n` sends when its first probe goes unanswered.
int HelpersAsked(SwimConfig cfg, int peers) {
  cfg.local_health = false;
  Node n(cfg, peers);
  int asked = 0;
  for (int64_t t = 0; t <= 300; t += 50) {
    n.net.sent.clear();
    n.swim.Tick(t);
    for (const auto& s : n.net.sent) asked += s.msg.kind() == pb::SwimMessage::PING_REQ;
  }
  return asked;
}

TEST(SwimIndirect, OneHelperMorePerDecadeOfTheClusterAboveAHundred) {
  EXPECT_EQ(HelpersAsked(SwimConfig{}, 20), 4);
  EXPECT_EQ(HelpersAsked(SwimConfig{}, 999), 5);   // 1,000 members
  EXPECT_EQ(HelpersAsked(SwimConfig{}, 2000), 6);  // up to 10,000
  SwimConfig fixed;
  fixed.helpers_by_size = false;
  EXPECT_EQ(HelpersAsked(fixed, 2000), 4);
}

// p2 asks `n` to probe p1; p1 answers (with the probe id of the PING it got)
// at `ack_at`, or never if negative. Returns the PINGs `n` sent p1.
std::vector<pb::SwimMessage> HelperPings(bool retry, int64_t ack_at) {
  SwimConfig cfg;
  cfg.helper_retry = retry;
  Node n(cfg, 5);
  n.Hear(3, {Update(9, pb::SUSPECT, kInc, Peer(3))}, 0);  // news to piggyback
  pb::SwimMessage req;
  req.set_kind(pb::SwimMessage::PING_REQ);
  *req.mutable_self() = Update(2, pb::ALIVE);
  req.set_probe_id(77);
  req.set_target(Peer(1));
  req.set_target_address(PeerAddress(1));
  n.net.sent.clear();
  n.swim.Receive(PeerAddress(2), req, 1);
  std::vector<pb::SwimMessage> pings;
  auto collect = [&] {
    for (const auto& s : n.net.sent) {  // a relayed PING names its origin; the node's own probes do not
      if (s.to == PeerAddress(1) && s.msg.kind() == pb::SwimMessage::PING && !s.msg.origin().empty()) {
        pings.push_back(s.msg);
      }
    }
    n.net.sent.clear();
  };
  collect();
  for (int64_t t = 50; t <= 400; t += 50) {
    if (ack_at >= 0 && t == ack_at && !pings.empty()) {
      pb::SwimMessage ack;
      ack.set_kind(pb::SwimMessage::ACK);
      *ack.mutable_self() = Update(1, pb::ALIVE);
      ack.set_probe_id(pings[0].probe_id());
      ack.set_target(Peer(1));
      n.swim.Receive(PeerAddress(1), ack, t);
    }
    n.swim.Tick(t);
    collect();
  }
  return pings;
}

TEST(SwimIndirect, AHelperPingsTheTargetOnceMoreWhenNoAckCameInHalfThePingTimeout) {
  const auto pings = HelperPings(true, -1);
  ASSERT_EQ(pings.size(), 2u);
  EXPECT_EQ(pings[1].probe_id(), pings[0].probe_id());
  // Both go bare: the target missed a direct ping already and may be gone;
  // the origin's news would be transmissions lost to the live members.
  EXPECT_EQ(pings[0].updates_size(), 0) << "the relayed PING carries no news";
  EXPECT_EQ(pings[1].updates_size(), 0) << "nor does the retry";
  EXPECT_EQ(HelperPings(true, 50).size(), 1u) << "answered in time: no retry";
  EXPECT_EQ(HelperPings(false, -1).size(), 1u);
}

TEST(SwimDissemination, PiggybackFillsTheByteBudgetWithRefutationsAndDeathsBeforeRepeatedSuspicions) {
  Node n(SwimConfig{}, 300);
  std::vector<pb::MemberUpdate> suspects;
  for (int i = 1; i <= 40; ++i) suspects.push_back(Update(i, pb::SUSPECT, kInc, Peer(299)));
  n.Hear(299, suspects, 0);
  n.swim.Tick(0);    // a PING and
  n.swim.Tick(250);  // PING_REQs: each suspicion sent at least once, fewer than 10 times
  std::vector<pb::MemberUpdate> news;
  for (int i = 1; i <= 5; ++i) news.push_back(Update(i, pb::ALIVE, kInc + 1));  // refutations
  for (int i = 41; i <= 50; ++i) news.push_back(Update(i, pb::DEAD));
  n.Hear(298, news, 300);
  n.net.sent.clear();
  for (int64_t t = 300; n.net.sent.empty() && t < 5000; t += 50) n.swim.Tick(t);
  ASSERT_FALSE(n.net.sent.empty());
  const pb::SwimMessage& m = n.net.sent[0].msg;
  EXPECT_LE(m.ByteSizeLong(), 1200u);
  EXPECT_GT(m.ByteSizeLong(), 1000u) << "the budget should be nearly filled";
  EXPECT_GT(m.updates_size(), 20);
  bool seen_suspect = false;
  int urgent = 0;
  for (const auto& u : m.updates()) {
    if (u.state() == pb::SUSPECT && u.suspected_by() == Peer(299)) seen_suspect = true;  // repeated
    if (u.state() == pb::DEAD || (u.state() == pb::ALIVE && u.incarnation() > kInc)) {
      EXPECT_FALSE(seen_suspect) << u.name() << " came after a repeated suspicion";
      ++urgent;
    }
  }
  EXPECT_EQ(urgent, 15);
}

TEST(SwimLoadSample, EachNodeHoldsABoundedFreshSampleThatRenewsItself) {
  SimConfig c;
  c.seed = 3;
  c.swim.load_sample_size = 16;
  SwimSim sim(c);
  sim.AddNodes(80, true);
  sim.RunFor(20000);
  auto sample_of = [&](int i) {
    std::set<std::string> names;
    for (MemberId id : sim.node(i).load_sample()) names.insert(sim.node(i).members().directory().name(id));
    return names;
  };
  const std::set<std::string> before = sample_of(0);
  for (int i = 0; i < sim.size(); ++i) {
    EXPECT_EQ(sim.node(i).load_sample().size(), 16u) << SwimSim::NameOf(i);
    int held = 0;
    for (const auto& [name, m] : sim.node(i).members()) {
      if (!m.load || name == SwimSim::NameOf(i)) continue;
      ++held;
      EXPECT_LT(m.load->AgeAt(sim.now()), 10000u) << SwimSim::NameOf(i) << " about " << name;
    }
    EXPECT_EQ(held, 16);
  }
  sim.RunFor(20000);
  const std::set<std::string> after = sample_of(0);
  int kept = 0;
  for (const auto& name : after) kept += before.count(name);
  EXPECT_LT(kept, 16) << "the sample never changed";
}

}  // namespace
}  // namespace roam
