// The balancer's role in roamd (docs/BALANCING.md): every period, this
// home weighs where its running processes would finish soonest
// (node/balancer.h) and moves them through the `roam migrate` path; as a
// target, it admits a balancer's move only if it still pays with its own,
// fresher, load.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>

#include "common/proc_sample.h"
#include "node/roamd.h"

namespace roam {

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

void Roamd::ScheduleBalance() {
  std::uniform_real_distribution<double> jitter(0.75, 1.25);
  const auto period = std::chrono::milliseconds(static_cast<int64_t>(cfg_.balancer.period_ms * jitter(rng_)));
  balance_timer_.expires_after(period);
  balance_timer_.async_wait([this](asio::error_code ec) {
    if (ec) return;
    Balance();
    ScheduleBalance();
  });
}

std::vector<BalanceNode> Roamd::BalanceView() {
  const int64_t now = Now();
  const std::string& self = swim_->name();
  std::vector<std::string> wanted;  // nodes our movable processes run on
  for (const auto& [pid, p] : home_) wanted.push_back(p.where);
  std::vector<std::string> peers;
  for (const auto& [name, m] : swim_->members()) {
    if (name != self && m.state == pb::ALIVE && m.load && m.load->AgeAt(now) < kStaleLoadMs) peers.push_back(name);
  }
  std::shuffle(peers.begin(), peers.end(), rng_);
  if (peers.size() > static_cast<size_t>(cfg_.balancer.sample)) peers.resize(static_cast<size_t>(cfg_.balancer.sample));
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
    n.demand_adjust = balance_sent_.demand(name, sampled_ms);
    n.mem_adjust = balance_sent_.mem(name, sampled_ms);
    for (const auto& [gpid, m] : balancing_) {  // moves in flight
      if (m.from == name) n.demand_adjust -= m.demand, n.mem_adjust -= static_cast<int64_t>(m.rss_bytes);
      if (m.to == name) n.demand_adjust += m.demand, n.mem_adjust += static_cast<int64_t>(m.rss_bytes);
    }
    nodes.push_back(std::move(n));
  };
  auto sampled = [&](const std::string& name) {
    const Member& m = swim_->members().at(name);
    return now - static_cast<int64_t>(m.load->AgeAt(now));
  };
  add(self, last_load_, last_sample_ms_);
  for (const std::string& name : peers) add(name, swim_->members().at(name).load->vector, sampled(name));
  for (const std::string& name : wanted) {
    auto it = swim_->members().find(name);
    if (it != swim_->members().end() && it->second.state == pb::ALIVE && it->second.load &&
        it->second.load->AgeAt(now) < kStaleLoadMs) {
      add(name, it->second.load->vector, sampled(name));
    }
  }
  return nodes;
}

void Roamd::Balance() {
  if (!balance_on_ || home_.empty()) return;
  const int64_t now = SteadyMs();
  std::vector<BalanceProcess> procs;
  for (const auto& [pid, p] : home_) {
    BalanceProcess b;
    b.gpid = p.gpid;
    b.where = p.where;
    b.demand = p.stats.demand();
    b.rss_bytes = p.stats.rss_bytes();
    b.cpu_seconds = p.cpu_seconds();
    b.age_ms = now - p.started_ms;
    b.resident_ms = p.moved_ms ? now - p.moved_ms : kNeverMoved;
    const bool moving = (p.remote && p.remote->moving()) || departures_.count(pid) || balancing_.count(p.gpid);
    b.movable = !p.lock && !moving && p.stats.cantmove().empty() &&
                p.stats.state() != "stopped" && now >= p.balance_retry_ms;
    procs.push_back(std::move(b));
  }
  std::vector<BalanceNode> view = BalanceView();
  for (BalanceMove& m : PlanMoves(view, procs, cfg_.balancer, move_costs_)) StartBalancedMove(std::move(m));
}

void Roamd::StartBalancedMove(BalanceMove m) {
  std::string home;
  pid_t pid = 0;
  if (!SplitGpid(m.gpid, &home, &pid)) return;
  spdlog::info("balance: move {} {} -> {} ({})", m.gpid, m.from, m.to, m.reason);
  balancing_[m.gpid] = m;
  balance_tags_[pid] = {m.demand, m.load_from};
  const std::string gpid = m.gpid;
  MigrateHere(pid, m.to, BalancerCredentials(), [this, gpid, pid](Result<pb::MigrationFigures> r) {
    auto it = balancing_.find(gpid);
    if (it == balancing_.end()) return;
    const BalanceMove m = it->second;
    balancing_.erase(it);
    balance_tags_.erase(pid);
    auto h = home_.find(pid);
    if (!r.ok()) {
      // A target's refusal (busy, no room, policy) says nothing of the
      // process: the next period may pick another target.
      const StatusCode c = r.status().code();
      int64_t wait_ms = 0;
      if (h != home_.end() && c != StatusCode::kBusy && c != StatusCode::kNoRoom && c != StatusCode::kRefused) {
        HomeProcess& p = h->second;
        wait_ms = kBalanceBackoffMs << std::min(p.balance_failures, kBalanceBackoffDoublings);
        ++p.balance_failures;
        p.balance_retry_ms = SteadyMs() + wait_ms;
      }
      spdlog::info("balance: {} stays on {}: {}{}", gpid, m.from, r.status().message(),
                   wait_ms ? fmt::format(" (left alone for {} s)", wait_ms / 1000) : "");
      return;
    }
    if (h != home_.end()) h->second.balance_failures = 0;
    ++balance_moves_;
    move_costs_.Learn(m.to, r->bytes_sent(), r->total_ms());
    // Until the load vectors show it: the demand left `from` and reached `to`.
    const int64_t now = Now();
    balance_sent_.Add(now, m.from, -m.demand, -static_cast<int64_t>(m.rss_bytes));
    balance_sent_.Add(now, m.to, m.demand, static_cast<int64_t>(m.rss_bytes));
    spdlog::info("balance: {} moved {} -> {} in {:.0f} ms ({:.0f} ms frozen, {} bytes)", gpid, m.from, m.to,
                 r->total_ms(), r->frozen_ms(), r->bytes_sent());
    PublishLoad();
  });
}

// At the target: a balancer's move still pays only if this node, with what
// it has admitted in the last moments, stays below the source's load.
Status Roamd::AdmitBalancedMove(const std::string& gpid, double demand, double limit, uint64_t rss_bytes) {
  if (limit <= 0) return Status::Ok();
  if (!balance_on_) {
    return Status::Error(StatusCode::kRefused, "balancing is off on " + swim_->name());
  }
  const int64_t now = Now();
  const double recent = balance_arrived_.demand(swim_->name(), last_sample_ms_);
  if (!AdmitsBalancedMove(last_load_, recent, demand, limit)) {
    return Status::Error(StatusCode::kBusy,
                         fmt::format("{} would gain nothing on {} any more: its load/capacity there would be {:.2f}, "
                                     "{:.2f} at its source",
                                     gpid, swim_->name(), LoadPerCapacity(last_load_, recent + demand), limit));
  }
  balance_arrived_.Add(now, swim_->name(), demand, static_cast<int64_t>(rss_bytes));
  ++balanced_in_;
  return Status::Ok();
}

// ---- memory ushering -------------------------------------------------------------------

void Roamd::UsherMemory() {
  const pb::LoadVector& v = last_load_;
  mem_trend_.Add(Now(), v.mem_free());
  if (!usher_on_ || v.mem_total() == 0) return;
  uint64_t leaving = 0;
  for (const auto& [gpid, bytes] : ushering_) leaving += bytes;
  uint64_t deficit =
      UsherDeficit(cfg_.usher, v.mem_total(), v.mem_free(), v.mem_pressure(), mem_trend_.fall_rate(), leaving);
  if (deficit == 0) return;
  // The processes that may move, largest first: guests, and ours running here.
  std::vector<std::pair<uint64_t, std::string>> movable;
  auto consider = [&](const std::string& g, pid_t pid) {
    Result<ProcSample> s = SampleProc(pid);
    if (s.ok() && !ushering_.count(g)) movable.emplace_back(s->rss_bytes, g);
  };
  for (const auto& [pid, g] : guests_) {
    if (!g->held() && !outgoing_.count(pid)) consider(g->gpid(), pid);
  }
  for (const auto& [pid, p] : home_) {
    if (p.pidfd && !p.lock && !departures_.count(pid) && p.stats.cantmove().empty()) {
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

void Roamd::UsherOne(const std::string& gpid, uint64_t rss) {
  const pb::LoadVector& v = last_load_;
  spdlog::warn(
      "usher: {} has {:.0f} of {:.0f} MiB free, falling {:.0f} MiB/s, memory pressure {:.1f}%: moving {} ({:.0f} MiB) "
      "to a node with room",
      swim_->name(), v.mem_free() / 1048576.0, v.mem_total() / 1048576.0,
      std::max(0.0, mem_trend_.fall_rate()) / 1048576.0, v.mem_pressure(), gpid, rss / 1048576.0);
  ushering_[gpid] = rss;
  Migrate(gpid, "best", BalancerCredentials(), [this, gpid](Result<pb::MigrationFigures> r) {
    ushering_.erase(gpid);
    if (!r.ok()) return spdlog::warn("usher: {} could not move: {}", gpid, r.status().message());
    ++ushered_;
    spdlog::info("usher: {} moved {} -> {} in {:.0f} ms ({:.0f} ms frozen)", gpid, r->from(), r->to(), r->total_ms(),
                 r->frozen_ms());
    PublishLoad();
  });
}

void Roamd::SetBalance(bool on) {
  balance_on_ = on;
  spdlog::info("balancing {}{}", on ? "on, policy " : "off", on ? BalancePolicyName(cfg_.balancer.policy) : "");
  PublishLoad();
}

}  // namespace roam
