// BalancerRole: what moves this home's processes by itself
// (docs/BALANCING.md). Every period (jittered) it weighs where its
// running processes would finish soonest (PlanMoves, node/balancer.h) and
// moves them through the home's `roam migrate` path; as a target it admits
// a balancer's move only while that still pays with its own, fresher,
// load. Short of memory, it ushers the largest process here away
// (node/usher.h).
//
// It owns its settings (on/off, policy; ushering on/off), its moves in
// flight, what it learnt of moves' costs, the moves it made and admitted
// lately (until load vectors show them), the back-off of processes whose
// moves failed, and its counters (published in the load vector).
//
// Single-threaded, on the NodeContext's loop.
#pragma once

#include <asio.hpp>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "node/balancer.h"
#include "node/guest_role.h"
#include "node/home_role.h"
#include "node/migrator.h"
#include "node/node_context.h"
#include "node/usher.h"

namespace roam {

class BalancerRole {
 public:
  BalancerRole(NodeContext& node, HomeRole& home, const GuestRole& guests, const Migrator& migrator);

  // Starts the periodic balancing.
  void Start();
  // At the target of a balancer's move (limit > 0): does it still pay here?
  Status Admit(const std::string& gpid, double demand, double limit, uint64_t rss_bytes);
  // The free memory ushering keeps: a move that would leave less is refused.
  uint64_t MemoryFloor() const;
  // Every load sample: short of memory, the largest process here moves away.
  void UsherMemory();

  // roam node balance on|off [POLICY]: false for a policy not known.
  bool SetPolicy(const std::string& name);
  void SetBalance(bool on);
  void SetUsher(bool on);
  // Its settings and counters, into this node's load vector.
  void FillLoad(pb::LoadVector* v) const;

 private:
  void Schedule();
  void Balance();
  std::vector<BalanceNode> View();
  void StartMove(BalanceMove m);
  void UsherOne(const std::string& gpid, uint64_t rss);

  NodeContext& node_;
  HomeRole& home_;
  const GuestRole& guests_;
  const Migrator& migrator_;
  BalanceParams params_;
  UsherParams usher_params_;
  asio::steady_timer timer_;
  std::mt19937 rng_{std::random_device{}()};
  bool on_ = true;
  std::map<std::string, BalanceMove> balancing_;  // its moves in flight, by GPID
  // A process whose balancer's moves failed in a row for a reason of its
  // own (not the target's): how many, and until when (SteadyMs) it is left
  // alone. By GPID; forgotten once the process has ended.
  struct Backoff {
    int failures = 0;
    int64_t retry_ms = 0;
  };
  std::map<std::string, Backoff> backoff_;
  // Moves made, until a load vector sampled a period after them shows them;
  // moves admitted here, until the process has surely arrived and been sampled.
  RecentMoves sent_{1200};
  RecentMoves arrived_{2500};
  MoveCostModel move_costs_;
  uint32_t moves_ = 0, balanced_in_ = 0;
  bool usher_on_ = true;  // roam node usher on|off
  MemoryTrend mem_trend_;
  std::map<std::string, uint64_t> ushering_;  // by GPID: its memory, moving away for want of memory
  uint32_t ushered_ = 0;
};

}  // namespace roam
