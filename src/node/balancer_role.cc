// BalancerRole (balancer_role.h, docs/BALANCING.md).
#include "node/balancer_role.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>

#include "common/proc_sample.h"

namespace roam {

BalancerRole::BalancerRole(NodeContext& node, HomeRole& home, const GuestRole& guests, const Migrator& migrator)
    : node_(node),
      home_(home),
      guests_(guests),
      migrator_(migrator),
      params_(node.cfg.balancer),
      usher_params_(node.cfg.usher),
      timer_(node.io),
      on_(node.cfg.balance) {}

void BalancerRole::Start() { Schedule(); }

namespace {

constexpr int64_t kStaleLoadMs = 5000;  // a load vector older than this is not acted on
// After a balancer's move failed for a reason of the process's own (the
// engine cannot carry it, a link was lost ...), the balancer leaves it for
// 10 s, doubled at each failure in a row up to 320 s: a process holding a
// pipe to outside its tree was tried every period, 200 times a minute.
constexpr int64_t kBalanceBackoffMs = 10000;
constexpr int kBalanceBackoffDoublings = 5;

pb::Credentials BalancerCredentials() {
  pb::Credentials c;
  c.set_uid(0);
  c.set_gid(0);
  c.set_user("balancer");
  return c;
}

}  // namespace

void BalancerRole::Schedule() {
  std::uniform_real_distribution<double> jitter(0.75, 1.25);
  const auto period = std::chrono::milliseconds(static_cast<int64_t>(params_.period_ms * jitter(rng_)));
  timer_.expires_after(period);
  timer_.async_wait([this](asio::error_code ec) {
    if (ec) return;
    Balance();
    Schedule();
  });
}

std::vector<BalanceNode> BalancerRole::View() {
  const int64_t now = NodeContext::Now();
  const std::string& self = node_.name();
  std::vector<std::string> wanted;  // nodes our movable processes run on
  for (const auto& [pid, p] : home_.processes()) wanted.push_back(p.where);
  std::vector<std::string> peers;
  for (const auto& [name, m] : node_.swim->members()) {
    if (name != self && m.state == pb::ALIVE && m.load && m.load->AgeAt(now) < kStaleLoadMs) peers.push_back(name);
  }
  std::shuffle(peers.begin(), peers.end(), rng_);
  if (peers.size() > static_cast<size_t>(params_.sample)) peers.resize(static_cast<size_t>(params_.sample));
  std::vector<BalanceNode> nodes;
  auto add = [&](const std::string& name, const pb::LoadVector& v, int64_t sampled_ms) {
    for (const BalanceNode& n : nodes) {
      if (n.name == name) return;
    }
    BalanceNode n;
    n.name = name;
    n.load = v;
    n.may_send = !v.balance_off();
    n.may_receive = !v.balance_off() && v.accepts_guests() && !v.draining();
    n.demand_adjust = sent_.demand(name, sampled_ms);
    n.mem_adjust = sent_.mem(name, sampled_ms);
    for (const auto& [gpid, m] : balancing_) {  // moves in flight
      if (m.from == name) n.demand_adjust -= m.demand, n.mem_adjust -= static_cast<int64_t>(m.rss_bytes);
      if (m.to == name) n.demand_adjust += m.demand, n.mem_adjust += static_cast<int64_t>(m.rss_bytes);
    }
    nodes.push_back(std::move(n));
  };
  auto sampled = [&](const std::string& name) {
    const Member& m = node_.swim->members().at(name);
    return now - static_cast<int64_t>(m.load->AgeAt(now));
  };
  add(self, node_.last_load, node_.last_sample_ms);
  for (const std::string& name : peers) add(name, node_.swim->members().at(name).load->vector, sampled(name));
  for (const std::string& name : wanted) {
    auto it = node_.swim->members().find(name);
    if (it != node_.swim->members().end() && it->second.state == pb::ALIVE && it->second.load &&
        it->second.load->AgeAt(now) < kStaleLoadMs) {
      add(name, it->second.load->vector, sampled(name));
    }
  }
  return nodes;
}

void BalancerRole::Balance() {
  if (!on_ || home_.processes().empty()) return;
  const int64_t now = SteadyMs();
  std::vector<BalanceProcess> procs;
  std::map<std::string, Backoff> backoff;  // of the processes still here
  for (const auto& [pid, p] : home_.processes()) {
    if (auto b = backoff_.find(p.gpid); b != backoff_.end()) backoff.insert(*b);
    BalanceProcess b;
    b.gpid = p.gpid;
    b.where = p.where;
    b.demand = p.stats.demand();
    b.rss_bytes = p.stats.rss_bytes();
    b.cpu_seconds = p.cpu_seconds();
    b.age_ms = now - p.started_ms;
    b.resident_ms = p.moved_ms ? now - p.moved_ms : kNeverMoved;
    const bool moving = home_.Moving(pid) || balancing_.count(p.gpid);
    b.movable = !p.lock && !moving && p.stats.cantmove().empty() && p.stats.state() != "stopped" &&
                now >= backoff[p.gpid].retry_ms;
    procs.push_back(std::move(b));
  }
  backoff_ = std::move(backoff);
  std::vector<BalanceNode> view = View();
  for (BalanceMove& m : PlanMoves(view, procs, params_, move_costs_)) StartMove(std::move(m));
}

void BalancerRole::StartMove(BalanceMove m) {
  std::string home;
  pid_t pid = 0;
  if (!SplitGpid(m.gpid, &home, &pid)) return;
  spdlog::info("balance: move {} {} -> {} ({})", m.gpid, m.from, m.to, m.reason);
  balancing_[m.gpid] = m;
  const std::string gpid = m.gpid;
  auto done = [this, gpid](Result<pb::MigrationFigures> r) {
    auto it = balancing_.find(gpid);
    if (it == balancing_.end()) return;
    const BalanceMove m = it->second;
    balancing_.erase(it);
    if (!r.ok()) {
      // A target's refusal (busy, no room, policy) says nothing of the
      // process: the next period may pick another target.
      const StatusCode c = r.status().code();
      int64_t wait_ms = 0;
      if (c != StatusCode::kBusy && c != StatusCode::kNoRoom && c != StatusCode::kRefused) {
        Backoff& b = backoff_[gpid];
        wait_ms = kBalanceBackoffMs << std::min(b.failures, kBalanceBackoffDoublings);
        ++b.failures;
        b.retry_ms = SteadyMs() + wait_ms;
      }
      spdlog::info("balance: {} stays on {}: {}{}", gpid, m.from, r.status().message(),
                   wait_ms ? fmt::format(" (left alone for {} s)", wait_ms / 1000) : "");
      return;
    }
    backoff_.erase(gpid);
    ++moves_;
    move_costs_.Learn(m.to, r->bytes_sent(), r->total_ms());
    // Until the load vectors show it: the demand left `from` and reached `to`.
    const int64_t now = NodeContext::Now();
    sent_.Add(now, m.from, -m.demand, -static_cast<int64_t>(m.rss_bytes));
    sent_.Add(now, m.to, m.demand, static_cast<int64_t>(m.rss_bytes));
    spdlog::info("balance: {} moved {} -> {} in {:.0f} ms ({:.0f} ms frozen, {} bytes)", gpid, m.from, m.to,
                 r->total_ms(), r->frozen_ms(), r->bytes_sent());
    node_.PublishLoad();
  };
  home_.MigrateHere(pid, m.to, BalancerCredentials(), std::move(done), BalanceTag{m.demand, m.load_from});
}

// At the target: a balancer's move still pays only if this node, with what
// it has admitted in the last moments, stays below the source's load.
Status BalancerRole::Admit(const std::string& gpid, double demand, double limit, uint64_t rss_bytes) {
  if (limit <= 0) return Status::Ok();
  if (!on_) {
    return Status::Error(StatusCode::kRefused, "balancing is off on " + node_.name());
  }
  const int64_t now = NodeContext::Now();
  const double recent = arrived_.demand(node_.name(), node_.last_sample_ms);
  if (!AdmitsBalancedMove(node_.last_load, recent, demand, limit)) {
    return Status::Error(StatusCode::kBusy,
                         fmt::format("{} would gain nothing on {} any more: its load/capacity there would be {:.2f}, "
                                     "{:.2f} at its source",
                                     gpid, node_.name(), LoadPerCapacity(node_.last_load, recent + demand), limit));
  }
  arrived_.Add(now, node_.name(), demand, static_cast<int64_t>(rss_bytes));
  ++balanced_in_;
  return Status::Ok();
}

// ---- memory ushering -------------------------------------------------------------------

void BalancerRole::UsherMemory() {
  const pb::LoadVector& v = node_.last_load;
  mem_trend_.Add(NodeContext::Now(), v.mem_free());
  if (!usher_on_ || v.mem_total() == 0) return;
  uint64_t leaving = 0;
  for (const auto& [gpid, bytes] : ushering_) leaving += bytes;
  uint64_t deficit =
      UsherDeficit(usher_params_, v.mem_total(), v.mem_free(), v.mem_pressure(), mem_trend_.fall_rate(), leaving);
  if (deficit == 0) return;
  // The processes that may move, largest first: guests, and ours running here.
  std::vector<std::pair<uint64_t, std::string>> movable;
  auto consider = [&](const std::string& g, pid_t pid) {
    Result<ProcSample> s = SampleProc(pid);
    if (s.ok() && !ushering_.count(g)) movable.emplace_back(s->rss_bytes, g);
  };
  for (const auto& [pid, gpid] : guests_.Settled()) {
    if (!migrator_.MovingOut(pid)) consider(gpid, pid);
  }
  for (const auto& [pid, p] : home_.processes()) {
    if (p.pidfd && !p.lock && !home_.Moving(pid) && p.stats.cantmove().empty()) {
      consider(p.gpid, pid);
    }
  }
  std::sort(movable.rbegin(), movable.rend());
  for (const auto& [rss, gpid] : movable) {
    if (deficit == 0) break;
    deficit -= std::min(deficit, std::max<uint64_t>(rss, 1));
    UsherOne(gpid, rss);
  }
}

void BalancerRole::UsherOne(const std::string& gpid, uint64_t rss) {
  const pb::LoadVector& v = node_.last_load;
  spdlog::warn(
      "usher: {} has {:.0f} of {:.0f} MiB free, falling {:.0f} MiB/s, memory pressure {:.1f}%: moving {} ({:.0f} MiB) "
      "to a node with room",
      node_.name(), v.mem_free() / 1048576.0, v.mem_total() / 1048576.0,
      std::max(0.0, mem_trend_.fall_rate()) / 1048576.0, v.mem_pressure(), gpid, rss / 1048576.0);
  ushering_[gpid] = rss;
  home_.Migrate(gpid, "best", BalancerCredentials(), [this, gpid](Result<pb::MigrationFigures> r) {
    ushering_.erase(gpid);
    if (!r.ok()) return spdlog::warn("usher: {} could not move: {}", gpid, r.status().message());
    ++ushered_;
    spdlog::info("usher: {} moved {} -> {} in {:.0f} ms ({:.0f} ms frozen)", gpid, r->from(), r->to(), r->total_ms(),
                 r->frozen_ms());
    node_.PublishLoad();
  });
}

void BalancerRole::SetBalance(bool on) {
  on_ = on;
  spdlog::info("balancing {}{}", on ? "on, policy " : "off", on ? BalancePolicyName(params_.policy) : "");
  node_.PublishLoad();
}

void BalancerRole::SetUsher(bool on) {
  usher_on_ = on;
  spdlog::info("memory ushering {}", on ? "on" : "off");
  node_.PublishLoad();
}

bool BalancerRole::SetPolicy(const std::string& name) { return ParseBalancePolicy(name, &params_.policy); }

uint64_t BalancerRole::MemoryFloor() const {
  if (!usher_on_) return 0;
  return static_cast<uint64_t>(usher_params_.free_share * static_cast<double>(node_.last_load.mem_total()));
}

void BalancerRole::FillLoad(pb::LoadVector* v) const {
  v->set_balance_off(!on_);
  v->set_balance_moves(moves_);
  v->set_balanced_in(balanced_in_);
  v->set_ushered(ushered_);
  v->set_usher_off(!usher_on_);
}

}  // namespace roam
