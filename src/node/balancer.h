// Balancer: which of a home's running processes should move, and where, so
// that they finish sooner (docs/BALANCING.md). Pure logic, no I/O, time
// passed in: roamd feeds it, every period, the load vectors it holds of a
// sample of nodes and the figures of its own processes, and carries out
// the moves it returns through the `roam migrate` path.
//
// Decentralised, as in openMosix: every roamd balances the processes it is
// the home of, wherever they run; there is no master. Two homes that pick
// the same idle node in the same period are kept apart at the target
// (`AdmitsBalancedMove`), which knows its own load first-hand.
//
// The model. A node n has capacity C = cpu_share * speed and a CPU demand
// D: the CPUs its runnable tasks wanted over the last period (running or
// waiting for a CPU; roam's processes and everyone else's). A CPU-bound
// process there runs at min(speed, C / D). Memory: M of T bytes used.
//
// Two policies decide whether moving process j (demand d, memory m) from
// X to T is worth it:
//  - kLoad, the plain load comparison: j's rate at T after the move beats
//    its rate at X by the hysteresis factor.
//  - kCost (default), the opportunity-cost method of Amir, Awerbuch, Barak,
//    Borgstrom and Keren (IEEE TPDS 2000): each node's CPU and memory are
//    priced exponentially in their relative load, cost(n) = a^(D/C') +
//    a^(w*M/T) (C' = capacity in cores of the fastest node seen), and j
//    moves where the cost it adds is lower than the cost its leaving
//    saves, by the hysteresis factor. One currency for CPU and memory: a
//    node near its memory limit becomes expensive, and memory that would
//    not fit is an infinite price.
// Either way the move must also pay: the time j gains (its remaining work,
// estimated as the CPU time it has used so far, times the difference of
// the two rates' inverses) must exceed `gain_over_cost` times the move's
// cost (memory ÷ bandwidth to the target, plus a fixed part, both learnt
// from past moves by MoveCostModel).
//
// What never moves: a process younger than `min_age_ms`, one that arrived
// less than `min_residence_ms` ago, a locked one, one with a CANTMOVE
// reason, one moving already. Nothing moves to a node that is dead,
// blocked, draining, has balancing off or would not have room, nor off a
// node with balancing off. Decisions in one period are taken one after
// the other, each seeing the ones before it.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "gossip.pb.h"

namespace roam {

enum class BalancePolicy { kCost, kLoad };
const char* BalancePolicyName(BalancePolicy p);
bool ParseBalancePolicy(const std::string& s, BalancePolicy* out);

struct BalanceParams {
  BalancePolicy policy = BalancePolicy::kCost;
  int64_t period_ms = 2000;          // how often a home looks (jittered by ±25%)
  int sample = 8;                    // peers considered per period, at random
  double hysteresis = 0.2;           // the better side must win by this factor
  int64_t min_age_ms = 3000;         // younger processes never move (short jobs)
  int64_t min_residence_ms = 15000;  // since its last move, for a process that moved
  double gain_over_cost = 2.0;       // expected gain must be this many times the move's cost
  int max_moves = 8;                 // per home and period
  double cost_base = 16;             // a, the price's base (kCost)
  double mem_weight = 4;             // w: memory full weighs like CPU at w cores per core
  double mem_reserve = 0.1;          // share of a target's memory that must stay free
};

// One node as the home sees it now.
struct BalanceNode {
  std::string name;
  pb::LoadVector load;
  bool may_receive = false;  // alive, accepts guests, not draining, balancing on
  bool may_send = false;     // alive, balancing on
  double demand_adjust = 0;  // our recent moves not yet in its load vector
  int64_t mem_adjust = 0;
};

// One process of this home.
constexpr int64_t kNeverMoved = int64_t{1} << 50;

struct BalanceProcess {
  std::string gpid;
  std::string where;
  double demand = 0;       // CPUs it wanted over the last period, 0..1
  uint64_t rss_bytes = 0;
  double cpu_seconds = 0;  // CPU time used so far
  int64_t age_ms = 0;
  int64_t resident_ms = 0;  // since it last moved (kNeverMoved if it never did)
  bool movable = false;     // not locked, no CANTMOVE reason, not moving
};

struct BalanceMove {
  std::string gpid, from, to;
  double demand = 0;
  uint64_t rss_bytes = 0;
  double rate_from = 0, rate_to = 0;  // its expected rate, in speed units
  double load_from = 0, load_to = 0;  // D/C at each end: before at `from`, after at `to`
  double gain_s = 0, cost_s = 0;      // expected time saved, and the move's cost
  std::string reason;                 // one line for the log
};

// What a move to each node costs, learnt from past moves: an exponential
// average of the bandwidth and of the fixed part (time not explained by
// the bytes).
class MoveCostModel {
 public:
  double Seconds(const std::string& node, uint64_t bytes) const;
  void Learn(const std::string& node, uint64_t bytes, double total_ms);

 private:
  struct Est {
    double bytes_per_s = 200e6;
    double fixed_s = 0.15;
  };
  std::map<std::string, Est> est_;
};

// Up to params.max_moves moves, best first.
std::vector<BalanceMove> PlanMoves(const std::vector<BalanceNode>& nodes, const std::vector<BalanceProcess>& procs,
                                   const BalanceParams& params, const MoveCostModel& costs);

// The target's own check of a balancer's move, with its first-hand load:
// after receiving `demand`, its load D/C must stay below `limit` (the
// source's load as the home saw it).
bool AdmitsBalancedMove(const pb::LoadVector& self, double recent_arrivals, double demand, double limit);

// Demand that reached (or left) a node at a known time, and is not in its
// load vector yet: an entry counts until the node's vector was sampled a
// whole `window_ms` after it (a vector measures the period before it).
class RecentMoves {
 public:
  explicit RecentMoves(int64_t window_ms) : window_ms_(window_ms) {}
  void Add(int64_t at_ms, const std::string& node, double demand, int64_t mem);
  // What `node`'s vector, sampled at `sampled_ms`, does not show yet.
  double demand(const std::string& node, int64_t sampled_ms);
  int64_t mem(const std::string& node, int64_t sampled_ms);

 private:
  struct Entry {
    int64_t at_ms;
    std::string node;
    double demand;
    int64_t mem;
  };
  int64_t window_ms_;
  std::deque<Entry> entries_;
};

// D/C of a load vector (demand per unit of capacity), the figure both
// ends of a balanced move compare.
double LoadPerCapacity(const pb::LoadVector& v, double extra_demand = 0);
// The demand of a load vector: its `demand`, or for an older node the CPU
// it used.
double DemandOf(const pb::LoadVector& v);

}  // namespace roam
