// The membership state machine on a deterministic simulated network.
#include "cluster/swim.h"

#include <gtest/gtest.h>

#include "cluster/swim_sim.h"

namespace roam {
namespace {

SimConfig Quiet(uint64_t seed = 1) {
  SimConfig c;
  c.seed = seed;
  return c;
}

bool AllAlive(const SwimSim& sim) {
  for (int s = 0; s < sim.size(); ++s) {
    if (sim.running(s) && !sim.AllRunningSee(s, pb::ALIVE)) return false;
  }
  return true;
}

TEST(SwimMembership, NodesJoiningThroughOnePeerLearnTheWholeMembership) {
  SwimSim sim(Quiet());
  sim.AddNodes(6, /*warm=*/false);
  sim.RunFor(3000);
  EXPECT_TRUE(AllAlive(sim));
  for (int i = 0; i < sim.size(); ++i) EXPECT_EQ(sim.node(i).members().size(), 6u) << SwimSim::NameOf(i);
}

TEST(SwimMembership, NodesFindEachOtherByMulticastAlone) {
  SimConfig c = Quiet();
  c.multicast = true;
  SwimSim sim(c);
  sim.AddNodes(1, false, /*static_peer=*/false);  // the first node is up before the others
  sim.RunFor(1000);
  sim.AddNodes(4, false, /*static_peer=*/false);
  sim.RunFor(3000);
  EXPECT_TRUE(AllAlive(sim));
  for (int i = 0; i < sim.size(); ++i) EXPECT_EQ(sim.node(i).members().size(), 5u) << SwimSim::NameOf(i);
}

TEST(SwimMembership, CrashedNodeIsDeclaredDeadByEveryOther) {
  SwimSim sim(Quiet());
  sim.AddNodes(8, true);
  sim.RunFor(2000);
  sim.Crash(3);
  int64_t start = sim.now();
  while (!sim.AllRunningSee(3, pb::DEAD) && sim.now() - start < 20000) sim.RunFor(50);
  EXPECT_TRUE(sim.AllRunningSee(3, pb::DEAD));
  EXPECT_LT(sim.now() - start, 5000) << "detection took " << sim.now() - start << " ms";
}

TEST(SwimMembership, RestartedNodeRejoinsWithHigherIncarnation) {
  SwimSim sim(Quiet());
  sim.AddNodes(5, true);
  sim.RunFor(1000);
  uint64_t before = sim.node(2).incarnation();
  sim.Crash(2);
  sim.RunFor(8000);
  ASSERT_TRUE(sim.AllRunningSee(2, pb::DEAD));
  sim.Restart(2);
  sim.RunFor(5000);
  EXPECT_TRUE(AllAlive(sim));
  EXPECT_GT(sim.node(2).incarnation(), before);
}

TEST(SwimMembership, GracefulLeaveIsSeenAsLeftNotDead) {
  SwimSim sim(Quiet());
  sim.AddNodes(5, true);
  sim.RunFor(1000);
  sim.Leave(4);
  sim.RunFor(3000);
  EXPECT_TRUE(sim.AllRunningSee(4, pb::LEFT));
  EXPECT_EQ(sim.dead_declarations(), 0u);
}

TEST(SwimMembership, HealedPartitionBecomesOneMembershipAgain) {
  SwimSim sim(Quiet());
  sim.AddNodes(6, true);
  sim.RunFor(1000);
  sim.Partition({0, 1, 2});
  sim.RunFor(15000);
  EXPECT_EQ(sim.StateSeenBy(0, 4), pb::DEAD);
  EXPECT_EQ(sim.StateSeenBy(4, 0), pb::DEAD);
  EXPECT_EQ(sim.StateSeenBy(0, 1), pb::ALIVE);
  sim.Heal();
  sim.RunFor(15000);
  EXPECT_TRUE(AllAlive(sim));
}

TEST(SwimMembership, NoNodeIsDeclaredDeadUnderFivePercentLoss) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    SimConfig c = Quiet(seed);
    c.loss = 0.05;
    SwimSim sim(c);
    sim.AddNodes(16, true);
    sim.RunFor(60000);
    EXPECT_EQ(sim.dead_declarations(), 0u) << "seed " << seed;
    EXPECT_TRUE(AllAlive(sim)) << "seed " << seed;
  }
}

TEST(SwimMembership, DelayedNetworkStillConverges) {
  SimConfig c = Quiet(3);
  c.min_delay_ms = 20;
  c.max_delay_ms = 120;
  SwimSim sim(c);
  sim.AddNodes(10, false);
  sim.RunFor(10000);
  EXPECT_TRUE(AllAlive(sim));
  EXPECT_EQ(sim.dead_declarations(), 0u);
}

TEST(SwimMembership, IsolatedNodeRefutesSuspicionWhenReachableAgain) {
  SwimSim sim(Quiet());
  sim.AddNodes(5, true);
  sim.RunFor(1000);
  sim.Partition({1});
  sim.RunFor(800);  // long enough to be suspected, shorter than the suspicion timeout
  sim.Heal();
  sim.RunFor(5000);
  EXPECT_TRUE(AllAlive(sim));
}

TEST(SwimLoad, EveryNodeLearnsEveryLoadVectorWithBoundedAge) {
  SwimSim sim(Quiet());
  sim.AddNodes(20, true);
  sim.RunFor(15000);
  for (int i = 0; i < sim.size(); ++i) {
    for (const auto& [name, m] : sim.node(i).members()) {
      ASSERT_TRUE(m.load) << SwimSim::NameOf(i) << " has no load for " << name;
      EXPECT_LT(m.load->AgeAt(sim.now()), 10000u) << SwimSim::NameOf(i) << " about " << name;
    }
  }
}

TEST(SwimLoad, NewerStampWinsOlderIsIgnored) {
  SwimSim sim(Quiet());
  sim.AddNodes(3, true);
  sim.RunFor(5000);
  const auto& m = sim.node(0).members().at("n2");
  ASSERT_TRUE(m.load);
  uint64_t stamp = m.load->vector.stamp();
  sim.RunFor(3000);
  EXPECT_GT(sim.node(0).members().at("n2").load->vector.stamp(), stamp);
}

// roamd's node verbs: the node that forwarded one takes the target's vector
// from the reply (Swim::LearnLoad) before gossip brings it, and a vector
// older than the one it holds changes nothing.
TEST(SwimLoad, AVectorLearntFromAReplyIsTakenIfNewer) {
  SwimSim sim(Quiet());
  sim.AddNodes(3, true);
  sim.RunFor(5000);
  const int64_t now = sim.now();
  pb::LoadVector blocked = sim.node(1).SelfLoad(now);
  blocked.set_accepts_guests(false);
  sim.mutable_node(1).SetSelfLoad(blocked, now);
  const pb::LoadVector fresh = sim.node(1).SelfLoad(now);
  ASSERT_EQ(fresh.node(), "n2");
  ASSERT_FALSE(fresh.accepts_guests());
  ASSERT_NE(sim.node(0).members().at("n2").load->vector.stamp(), fresh.stamp());
  sim.mutable_node(0).LearnLoad(fresh, now);
  const auto& seen = sim.node(0).members().at("n2").load->vector;
  EXPECT_EQ(seen.stamp(), fresh.stamp());
  EXPECT_FALSE(seen.accepts_guests());
  pb::LoadVector stale = fresh;
  stale.set_stamp(fresh.stamp() - 1);
  stale.set_accepts_guests(true);
  sim.mutable_node(0).LearnLoad(stale, now);
  EXPECT_FALSE(sim.node(0).members().at("n2").load->vector.accepts_guests());
}

// roamd calls GossipSoon when a process arrives or leaves: the vector goes
// out at the next tick instead of the end of the interval (here a minute),
// and a burst of such calls sends no more than one gossip per
// gossip_min_gap_ms.
TEST(SwimLoad, GossipSoonSendsTheVectorAtTheNextTickAndNotFasterThanTheGap) {
  SimConfig c = Quiet();
  c.swim.gossip_interval_ms = 60000;
  c.swim.gossip_min_gap_ms = 500;  // ten ticks
  c.publish_load = false;
  SwimSim sim(c);
  sim.AddNodes(3, true);
  sim.RunFor(3000);  // the first gossip of each, at a random time in the first second
  auto gossips = [&] { return sim.traffic().messages_by_kind[pb::SwimMessage::GOSSIP]; };
  auto publish = [&](uint32_t guests) {
    pb::LoadVector v = sim.node(1).SelfLoad(sim.now());
    v.set_guest_procs(guests);
    sim.mutable_node(1).SetSelfLoad(v, sim.now());
    return sim.node(1).SelfLoad(sim.now()).stamp();
  };
  const uint64_t before = gossips();
  const uint64_t stamp = publish(1);
  sim.RunFor(1000);
  EXPECT_EQ(gossips(), before) << "no gossip within the interval without GossipSoon";
  EXPECT_FALSE(sim.node(0).members().at("n2").load) << "n1 heard of n2's vector";

  sim.mutable_node(1).GossipSoon(sim.now());
  sim.RunFor(c.tick_ms + c.max_delay_ms);
  EXPECT_EQ(gossips(), before + 2) << "one gossip to each of the two others";
  ASSERT_TRUE(sim.node(0).members().at("n2").load);
  EXPECT_EQ(sim.node(0).members().at("n2").load->vector.stamp(), stamp);
  ASSERT_TRUE(sim.node(2).members().at("n2").load);
  EXPECT_EQ(sim.node(2).members().at("n2").load->vector.guest_procs(), 1u);

  // Again at once: held until gossip_min_gap_ms after the last, then sent.
  const uint64_t second = publish(2);
  sim.mutable_node(1).GossipSoon(sim.now());
  sim.RunFor(c.tick_ms * 4);
  EXPECT_EQ(gossips(), before + 2) << "sooner than the gap after the last";
  EXPECT_NE(sim.node(0).members().at("n2").load->vector.stamp(), second);
  sim.RunFor(c.swim.gossip_min_gap_ms + c.max_delay_ms);
  EXPECT_EQ(gossips(), before + 4);
  EXPECT_EQ(sim.node(0).members().at("n2").load->vector.stamp(), second);
}

TEST(SwimRules, SupersedeFollowsIncarnationAndStateOrder) {
  const std::string name = "n1", address = "10.0.0.1:7946";
  Member m(name, address);
  m.incarnation = 5;
  m.state = pb::ALIVE;
  auto u = [](MemberState s, uint64_t inc) {
    pb::MemberUpdate x;
    x.set_name("n1");
    x.set_state(s);
    x.set_incarnation(inc);
    return x;
  };
  EXPECT_FALSE(Supersedes(u(pb::ALIVE, 5), m));
  EXPECT_TRUE(Supersedes(u(pb::ALIVE, 6), m));
  EXPECT_TRUE(Supersedes(u(pb::SUSPECT, 5), m));
  EXPECT_FALSE(Supersedes(u(pb::SUSPECT, 4), m));
  EXPECT_TRUE(Supersedes(u(pb::DEAD, 5), m));
  m.state = pb::SUSPECT;
  EXPECT_FALSE(Supersedes(u(pb::SUSPECT, 5), m));
  EXPECT_TRUE(Supersedes(u(pb::ALIVE, 6), m));
  m.state = pb::DEAD;
  EXPECT_FALSE(Supersedes(u(pb::SUSPECT, 9), m));
  EXPECT_FALSE(Supersedes(u(pb::ALIVE, 5), m));
  EXPECT_TRUE(Supersedes(u(pb::ALIVE, 6), m));
  EXPECT_TRUE(Supersedes(u(pb::LEFT, 5), m));
  m.state = pb::LEFT;
  EXPECT_FALSE(Supersedes(u(pb::DEAD, 9), m));
  EXPECT_TRUE(Supersedes(u(pb::ALIVE, 6), m));
}

}  // namespace
}  // namespace roam
