// Which running processes the balancer moves, and where (src/node/balancer.h).
// A small simulator applies its moves to the nodes' demand, period after
// period, the way the load vectors would show them.
#include "node/balancer.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

namespace roam {
namespace {

BalanceNode Node(const std::string& name, double share, double demand = 0, uint64_t mem_total = 1ull << 30,
                 uint64_t mem_free = 1ull << 30) {
  BalanceNode n;
  n.name = name;
  n.load.set_cpus(2);
  n.load.set_cpu_share(share);
  n.load.set_speed(400);
  n.load.set_demand(demand);
  n.load.set_mem_total(mem_total);
  n.load.set_mem_free(mem_free);
  n.load.set_accepts_guests(true);
  n.may_send = n.may_receive = true;
  return n;
}

BalanceProcess Job(const std::string& gpid, const std::string& where, double demand = 1.0) {
  BalanceProcess p;
  p.gpid = gpid;
  p.where = where;
  p.demand = demand;
  p.rss_bytes = 4 << 20;
  p.cpu_seconds = 10;
  p.age_ms = p.resident_ms = 60000;
  p.movable = true;
  return p;
}

struct Sim {
  std::vector<BalanceNode> nodes;
  std::vector<BalanceProcess> procs;
  std::map<std::string, int> moves_of;
  double other_demand(const std::string& node) const {  // demand that is not ours (the owner's programs)
    auto it = others.find(node);
    return it == others.end() ? 0 : it->second;
  }
  std::map<std::string, double> others;

  // The load vectors as the next sample would show them.
  void Measure() {
    for (BalanceNode& n : nodes) {
      double d = other_demand(n.name);
      for (const BalanceProcess& p : procs) {
        if (p.where == n.name) d += p.demand;
      }
      n.load.set_demand(d);
    }
  }
  // One period: plan, apply. Returns the number of moves.
  int Step(const BalanceParams& params) {
    Measure();
    MoveCostModel costs;
    std::vector<BalanceMove> moves = PlanMoves(nodes, procs, params, costs);
    for (const BalanceMove& m : moves) {
      for (BalanceProcess& p : procs) {
        if (p.gpid == m.gpid) {
          EXPECT_EQ(p.where, m.from);
          p.where = m.to;
          ++moves_of[p.gpid];
        }
      }
    }
    return static_cast<int>(moves.size());
  }
  // Periods until no move is planned (at most `limit`).
  int Settle(const BalanceParams& params, int limit = 100) {
    for (int i = 0; i < limit; ++i) {
      if (Step(params) == 0) return i;
    }
    return limit;
  }
  std::map<std::string, int> Count() const {
    std::map<std::string, int> c;
    for (const BalanceNode& n : nodes) c[n.name] = 0;
    for (const BalanceProcess& p : procs) ++c[p.where];
    return c;
  }
};

Sim FourNodes(int jobs_on_n1) {
  Sim s;
  s.nodes = {Node("n1", 0.8), Node("n2", 0.6), Node("n3", 0.4), Node("n4", 0.2)};
  for (int i = 0; i < jobs_on_n1; ++i) s.procs.push_back(Job("n1:" + std::to_string(100 + i), "n1"));
  return s;
}

class BothPolicies : public ::testing::TestWithParam<BalancePolicy> {
 protected:
  BalanceParams params() const {
    BalanceParams p;
    p.policy = GetParam();
    return p;
  }
};

TEST_P(BothPolicies, TwelveJobsOnOneNodeSpreadByShares) {
  // The case: n2..n4 were blocked, then unblocked.
  Sim s = FourNodes(12);
  const int periods = s.Settle(params());
  EXPECT_LT(periods, 6);
  std::map<std::string, int> want = {{"n1", 5}, {"n2", 4}, {"n3", 2}, {"n4", 1}};  // the best split
  if (GetParam() == BalancePolicy::kCost) {
    EXPECT_EQ(s.Count(), want);
  } else {
    // The plain comparison's hysteresis is a ratio of rates: it stops at
    // 6/3/2/1, where one more move would gain only 12%.
    for (const auto& [node, n] : s.Count()) EXPECT_LE(std::abs(n - want[node]), 1) << node;
  }
  for (const auto& [gpid, n] : s.moves_of) EXPECT_EQ(n, 1) << gpid;  // nothing moved twice
}

TEST_P(BothPolicies, EqualNodesGetOneJobEach) {
  Sim s;
  s.nodes = {Node("n1", 1), Node("n2", 1), Node("n3", 1), Node("n4", 1)};
  for (int i = 0; i < 4; ++i) s.procs.push_back(Job("n1:" + std::to_string(i), "n1"));
  EXPECT_EQ(s.Step(params()), 3);  // one period does it: decisions see each other
  std::map<std::string, int> want = {{"n1", 1}, {"n2", 1}, {"n3", 1}, {"n4", 1}};
  EXPECT_EQ(s.Count(), want);
}

TEST_P(BothPolicies, BalancedStateStaysPutDespiteNoise) {
  // 2 jobs on n1 and 1 on n2, equal nodes: moving one would just swap the
  // imbalance. A measurement 10% high must not make it move either.
  Sim s;
  s.nodes = {Node("n1", 1), Node("n2", 1)};
  s.procs = {Job("n1:1", "n1"), Job("n1:2", "n1"), Job("n1:3", "n2")};
  s.Measure();
  s.nodes[0].load.set_demand(2.1);
  EXPECT_TRUE(PlanMoves(s.nodes, s.procs, params(), MoveCostModel()).empty());
}

TEST_P(BothPolicies, RandomClustersSettleWithoutPingPong) {
  std::mt19937 rng(42);
  std::uniform_real_distribution<double> share(0.1, 2.0);
  std::uniform_int_distribution<int> count(2, 8), jobs(1, 40), pick(0, 7);
  std::uniform_real_distribution<double> demand(0.2, 1.0), other(0, 1.5);
  for (int trial = 0; trial < 200; ++trial) {
    Sim s;
    const int n = count(rng);
    for (int i = 0; i < n; ++i) {
      const std::string name = "n" + std::to_string(i + 1);
      s.nodes.push_back(Node(name, share(rng)));
      if (pick(rng) == 0) s.others[name] = other(rng);
    }
    const int j = jobs(rng);
    for (int i = 0; i < j; ++i) {
      s.procs.push_back(Job("n1:" + std::to_string(i), s.nodes[pick(rng) % n].name, demand(rng)));
    }
    const int periods = s.Settle(params(), 200);
    ASSERT_LT(periods, 200) << "trial " << trial << " never settled";
    for (const auto& [gpid, moves] : s.moves_of) EXPECT_LE(moves, 3) << "trial " << trial << " " << gpid;
  }
}

TEST_P(BothPolicies, OwnersProgramsPushGuestsAway) {
  // n2 runs one of our jobs and its owner's CPU hog (not a roam process).
  Sim s;
  s.nodes = {Node("n1", 1), Node("n2", 1), Node("n3", 1)};
  s.procs = {Job("n1:1", "n1"), Job("n1:2", "n2")};
  s.others["n2"] = 1.0;
  ASSERT_EQ(s.Step(params()), 1);
  EXPECT_EQ(s.procs[1].where, "n3");
}

INSTANTIATE_TEST_SUITE_P(Balancer, BothPolicies, ::testing::Values(BalancePolicy::kCost, BalancePolicy::kLoad),
                         [](const auto& info) { return std::string(BalancePolicyName(info.param)); });

TEST(Balancer, WhatNeverMoves) {
  BalanceParams params;
  auto plan = [&](std::vector<BalanceNode> nodes, BalanceProcess p) {
    nodes[0].load.set_demand(3);  // n1 is crowded, n2 idle
    return PlanMoves(nodes, {p}, params, MoveCostModel());
  };
  std::vector<BalanceNode> nodes = {Node("n1", 1), Node("n2", 1)};
  ASSERT_EQ(plan(nodes, Job("n1:1", "n1")).size(), 1u);  // the control: it would move

  BalanceProcess young = Job("n1:1", "n1");
  young.age_ms = young.resident_ms = 1000;
  EXPECT_TRUE(plan(nodes, young).empty()) << "younger than min_age";
  BalanceProcess arrived = Job("n1:1", "n1");
  arrived.resident_ms = 5000;
  EXPECT_TRUE(plan(nodes, arrived).empty()) << "moved lately";
  BalanceProcess locked = Job("n1:1", "n1");
  locked.movable = false;
  EXPECT_TRUE(plan(nodes, locked).empty()) << "locked or CANTMOVE";
  EXPECT_TRUE(plan(nodes, Job("n1:1", "n1", 0.05)).empty()) << "waits on I/O, not on the CPU";
  BalanceProcess brief = Job("n1:1", "n1");
  brief.cpu_seconds = 0.1;
  EXPECT_TRUE(plan(nodes, brief).empty()) << "too little work to pay for the move";
  BalanceProcess big = Job("n1:1", "n1");
  big.rss_bytes = 8ull << 30;
  nodes[1].load.set_mem_total(16ull << 30);
  nodes[1].load.set_mem_free(16ull << 30);
  EXPECT_TRUE(plan(nodes, big).empty()) << "8 GiB take longer to send than it would gain";

  std::vector<BalanceNode> blocked = {Node("n1", 1), Node("n2", 1)};
  blocked[1].may_receive = false;
  EXPECT_TRUE(plan(blocked, Job("n1:1", "n1")).empty()) << "blocked, draining or balance off";
  std::vector<BalanceNode> fixed = {Node("n1", 1), Node("n2", 1)};
  fixed[0].may_send = false;
  EXPECT_TRUE(plan(fixed, Job("n1:1", "n1")).empty()) << "balance off where it runs";
  std::vector<BalanceNode> full = {Node("n1", 1), Node("n2", 1, 0, 1ull << 30, 100ull << 20)};
  BalanceProcess fat = Job("n1:1", "n1");
  fat.rss_bytes = 200ull << 20;
  fat.cpu_seconds = 1000;
  EXPECT_TRUE(plan(full, fat).empty()) << "would not fit";
  EXPECT_EQ(plan(nodes, fat).size(), 1u);
}

TEST(Balancer, CostPolicyWeighsMemory) {
  // Two equal CPUs; n2 has more free memory. Moving a big job to the node
  // where memory is nearly full is priced higher than to the roomy one.
  BalanceParams params;
  std::vector<BalanceNode> nodes = {Node("n1", 1, 3), Node("n2", 1, 0, 4ull << 30, 4ull << 30),
                                    Node("n3", 1, 0, 4ull << 30, 1ull << 30)};
  BalanceProcess p = Job("n1:1", "n1");
  p.rss_bytes = 512ull << 20;
  p.cpu_seconds = 100;
  std::vector<BalanceMove> m = PlanMoves(nodes, {p}, params, MoveCostModel());
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].to, "n2");
  EXPECT_FALSE(m[0].reason.empty());
}

TEST(Balancer, AdjustmentsCountMovesNotYetSeen) {
  // Our last period sent two jobs to n2; its vector does not show them yet.
  BalanceParams params;
  std::vector<BalanceNode> nodes = {Node("n1", 1, 3), Node("n2", 1, 0)};
  nodes[1].demand_adjust = 2;
  nodes[0].demand_adjust = -1;
  std::vector<BalanceProcess> procs = {Job("n1:1", "n1")};
  EXPECT_TRUE(PlanMoves(nodes, procs, params, MoveCostModel()).empty());
}

TEST(Balancer, TargetAdmitsOnlyWhileItPays) {
  pb::LoadVector self;
  self.set_cpu_share(1);
  self.set_speed(400);
  self.set_demand(0);
  EXPECT_TRUE(AdmitsBalancedMove(self, 0, 1, 3.0 / 400));
  // Another home's move arrived a moment ago: one more would not gain.
  EXPECT_FALSE(AdmitsBalancedMove(self, 2, 1, 3.0 / 400));
  EXPECT_TRUE(AdmitsBalancedMove(self, 2, 1, 0)) << "a move someone asked for is not the balancer's to judge";
}

TEST(Balancer, RecentMovesCountUntilAVectorShowsThem) {
  RecentMoves r(1000);  // a vector measures the second before it
  r.Add(0, "n2", 1, 100);
  r.Add(500, "n2", 1, 100);
  r.Add(500, "n3", -1, -100);
  EXPECT_DOUBLE_EQ(r.demand("n2", 600), 2) << "a vector sampled just after the moves";
  EXPECT_EQ(r.mem("n3", 600), -100);
  EXPECT_DOUBLE_EQ(r.demand("n2", 1200), 1) << "shows the first move, not the second";
  EXPECT_DOUBLE_EQ(r.demand("n2", 2000), 0);
  EXPECT_DOUBLE_EQ(r.demand("n2", -5000), 2) << "an old vector shows neither";
  EXPECT_DOUBLE_EQ(r.demand("n4", 0), 0);
}

TEST(Balancer, MoveCostIsLearnt) {
  MoveCostModel m;
  const double before = m.Seconds("n2", 100ull << 20);
  for (int i = 0; i < 20; ++i) m.Learn("n2", 100ull << 20, 5000);  // 100 MiB in 5 s: a slow link
  EXPECT_GT(m.Seconds("n2", 100ull << 20), 3.0);
  EXPECT_GT(m.Seconds("n2", 100ull << 20), before);
  EXPECT_DOUBLE_EQ(m.Seconds("n3", 100ull << 20), before) << "another node keeps the defaults";
}

TEST(Balancer, PolicyNames) {
  BalancePolicy p;
  EXPECT_TRUE(ParseBalancePolicy("load", &p));
  EXPECT_EQ(p, BalancePolicy::kLoad);
  EXPECT_FALSE(ParseBalancePolicy("fast", &p));
}

}  // namespace
}  // namespace roam
