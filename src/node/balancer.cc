#include "node/balancer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

namespace roam {

namespace {

constexpr double kMinCpuBound = 0.1;  // a process wanting less is not moved for CPU's sake
constexpr double kMaxExponent = 200;  // a^200 still fits a double for a <= 30

double Speed(const pb::LoadVector& v) { return v.speed() > 0 ? v.speed() : 1.0; }
double Share(const pb::LoadVector& v) {
  return v.cpu_share() > 0 ? v.cpu_share() : std::max<uint32_t>(1, v.cpus());
}
double Capacity(const pb::LoadVector& v) { return Share(v) * Speed(v); }

// The rate (speed units) of one process on a node whose demand, with it, is d.
double Rate(const pb::LoadVector& v, double d) { return std::min(Speed(v), Capacity(v) / std::max(d, 1e-9)); }

struct NodeState {
  const BalanceNode* node;
  double demand;
  double mem_used;
  double mem_total;
};

double Price(double base, double x) { return std::pow(base, std::min(x, kMaxExponent)); }

// The opportunity cost of a node with demand d and memory used m.
double NodeCost(const NodeState& n, double d, double m, double ref_speed, const BalanceParams& p) {
  const double cap = Capacity(n.node->load) / ref_speed;  // in cores of the fastest node
  double c = Price(p.cost_base, d / cap);
  if (n.mem_total > 0) c += Price(p.cost_base, p.mem_weight * m / n.mem_total);
  return c;
}

}  // namespace

const char* BalancePolicyName(BalancePolicy p) { return p == BalancePolicy::kCost ? "cost" : "load"; }

bool ParseBalancePolicy(const std::string& s, BalancePolicy* out) {
  if (s == "cost") return *out = BalancePolicy::kCost, true;
  if (s == "load") return *out = BalancePolicy::kLoad, true;
  return false;
}

double DemandOf(const pb::LoadVector& v) {
  if (v.demand() > 0) return v.demand();
  return std::clamp(v.cpu_util(), 0.0, 1.0) * Share(v);
}

double LoadPerCapacity(const pb::LoadVector& v, double extra_demand) {
  return (DemandOf(v) + extra_demand) / Capacity(v);
}

bool AdmitsBalancedMove(const pb::LoadVector& self, double recent_arrivals, double demand, double limit) {
  if (limit <= 0) return true;  // not a balancer's move
  return LoadPerCapacity(self, recent_arrivals + demand) < limit;
}

// ---- MoveCostModel -----------------------------------------------------------------------

double MoveCostModel::Seconds(const std::string& node, uint64_t bytes) const {
  auto it = est_.find(node);
  Est e = it == est_.end() ? Est{} : it->second;
  return e.fixed_s + static_cast<double>(bytes) / e.bytes_per_s;
}

void MoveCostModel::Learn(const std::string& node, uint64_t bytes, double total_ms) {
  if (!(total_ms > 0)) return;
  Est& e = est_[node];
  const double total_s = total_ms / 1000.0;
  constexpr double kWeight = 0.3;
  if (bytes >= (8u << 20)) {  // enough bytes to say something of the bandwidth
    const double transfer_s = std::max(0.01, total_s - e.fixed_s);
    e.bytes_per_s = std::clamp((1 - kWeight) * e.bytes_per_s + kWeight * (static_cast<double>(bytes) / transfer_s),
                               1e6, 1e11);
  }
  const double fixed = std::max(0.01, total_s - static_cast<double>(bytes) / e.bytes_per_s);
  e.fixed_s = std::clamp((1 - kWeight) * e.fixed_s + kWeight * fixed, 0.01, 60.0);
}

// ---- RecentMoves -------------------------------------------------------------------------

void RecentMoves::Add(int64_t at_ms, const std::string& node, double demand, int64_t mem) {
  // Entries far older than any vector still to come are of no use.
  while (!entries_.empty() && at_ms - entries_.front().at_ms > 10 * window_ms_ + 10000) entries_.pop_front();
  entries_.push_back({at_ms, node, demand, mem});
}

double RecentMoves::demand(const std::string& node, int64_t sampled_ms) {
  double d = 0;
  for (const Entry& e : entries_) {
    if (e.node == node && sampled_ms < e.at_ms + window_ms_) d += e.demand;
  }
  return d;
}

int64_t RecentMoves::mem(const std::string& node, int64_t sampled_ms) {
  int64_t m = 0;
  for (const Entry& e : entries_) {
    if (e.node == node && sampled_ms < e.at_ms + window_ms_) m += e.mem;
  }
  return m;
}

// ---- PlanMoves ---------------------------------------------------------------------------

std::vector<BalanceMove> PlanMoves(const std::vector<BalanceNode>& nodes, const std::vector<BalanceProcess>& procs,
                                   const BalanceParams& p, const MoveCostModel& costs) {
  std::map<std::string, NodeState> state;
  double ref_speed = 1;
  for (const BalanceNode& n : nodes) {
    const pb::LoadVector& v = n.load;
    const double used = v.mem_total() > v.mem_free() ? static_cast<double>(v.mem_total() - v.mem_free()) : 0;
    state[n.name] = {&n, std::max(0.0, DemandOf(v) + n.demand_adjust), std::max(0.0, used + static_cast<double>(n.mem_adjust)),
                     static_cast<double>(v.mem_total())};
    ref_speed = std::max(ref_speed, Speed(v));
  }
  std::vector<BalanceMove> out;
  std::set<std::string> moved;
  for (int round = 0; round < p.max_moves; ++round) {
    BalanceMove best;
    double best_net = 0;
    for (const BalanceProcess& j : procs) {
      if (!j.movable || moved.count(j.gpid) || j.age_ms < p.min_age_ms || j.resident_ms < p.min_residence_ms) continue;
      const double d = std::clamp(j.demand, 0.0, 1.0);
      if (d < kMinCpuBound) continue;
      auto xs = state.find(j.where);
      if (xs == state.end() || !xs->second.node->may_send) continue;
      NodeState& x = xs->second;
      const pb::LoadVector& xv = x.node->load;
      const double dx = std::max(x.demand, d);  // it runs there: the demand includes it
      const double m = static_cast<double>(j.rss_bytes);
      const double rate_from = Rate(xv, dx);
      for (auto& [name, t] : state) {
        if (name == j.where || !t.node->may_receive) continue;
        const pb::LoadVector& tv = t.node->load;
        if (t.mem_total > 0 && t.mem_used + m > t.mem_total * (1 - p.mem_reserve)) continue;  // would not fit
        const double rate_to = Rate(tv, t.demand + d);
        bool better;
        if (p.policy == BalancePolicy::kLoad) {
          better = rate_to > (1 + p.hysteresis) * rate_from;
        } else {
          const double saved = NodeCost(x, dx, x.mem_used, ref_speed, p) -
                               NodeCost(x, dx - d, std::max(0.0, x.mem_used - m), ref_speed, p);
          const double added = NodeCost(t, t.demand + d, t.mem_used + m, ref_speed, p) -
                               NodeCost(t, t.demand, t.mem_used, ref_speed, p);
          better = saved > added * Price(p.cost_base, p.hysteresis) && rate_to > rate_from;
        }
        if (!better) continue;
        // Its remaining work, guessed from the work it has done (a process
        // that has run long is likely to run long): in speed-unit seconds.
        const double work = std::max(0.0, j.cpu_seconds) * Speed(xv);
        const double gain = work / rate_from - work / rate_to;
        const double cost = costs.Seconds(name, j.rss_bytes);
        if (gain < p.gain_over_cost * cost) continue;
        if (gain - cost <= best_net) continue;
        best_net = gain - cost;
        best.gpid = j.gpid;
        best.from = j.where;
        best.to = name;
        best.demand = d;
        best.rss_bytes = j.rss_bytes;
        best.rate_from = rate_from;
        best.rate_to = rate_to;
        best.load_from = dx / Capacity(xv);
        best.load_to = (t.demand + d) / Capacity(tv);
        best.gain_s = gain;
        best.cost_s = cost;
      }
    }
    if (best.gpid.empty()) break;
    NodeState& x = state[best.from];
    NodeState& t = state[best.to];
    char why[320];
    std::snprintf(why, sizeof why,
                  "%s: %.1f CPUs wanted on %s's %.2f, %.1f on %s's %.2f after; its rate %.0f -> %.0f; "
                  "gain %.1f s for a move of %.2f s",
                  BalancePolicyName(p.policy), std::max(x.demand, best.demand), best.from.c_str(),
                  Share(x.node->load), t.demand + best.demand, best.to.c_str(), Share(t.node->load), best.rate_from,
                  best.rate_to, best.gain_s, best.cost_s);
    best.reason = why;
    x.demand = std::max(0.0, std::max(x.demand, best.demand) - best.demand);
    x.mem_used = std::max(0.0, x.mem_used - static_cast<double>(best.rss_bytes));
    t.demand += best.demand;
    t.mem_used += static_cast<double>(best.rss_bytes);
    moved.insert(best.gpid);
    out.push_back(std::move(best));
  }
  return out;
}

}  // namespace roam
