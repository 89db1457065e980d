#include "node/placement.h"

#include <algorithm>

namespace roam {

namespace {

struct Scored {
  std::string name;
  double rate;
  double pressure;  // demand per CPU share
  bool is_home;
};

}  // namespace

std::vector<std::string> RankNodes(const std::vector<PlacementNode>& nodes) {
  std::vector<Scored> scored;
  for (const PlacementNode& n : nodes) {
    if (!n.is_home) {
      if (!n.alive || !n.has_load || !n.load.accepts_guests()) continue;
      if (n.load.mem_total() > 0 && n.load.mem_free() < kMinGuestMemory) continue;
    }
    double share = n.load.cpu_share() > 0 ? n.load.cpu_share() : std::max<uint32_t>(1, n.load.cpus());
    double speed = n.load.speed() > 0 ? n.load.speed() : 1;
    double busy = n.has_load ? std::clamp(n.load.cpu_util(), 0.0, 1.0) * share : 0;
    double demand = std::max(busy, static_cast<double>(n.ours_running));
    scored.push_back({n.name, speed * std::min(1.0, share / (demand + 1)), demand / share, n.is_home});
  }
  std::sort(scored.begin(), scored.end(), [](const Scored& a, const Scored& b) {
    // Rates within 15% are equal: speed calibration alone varies that much: the load figures are not more precise.
    if (std::abs(a.rate - b.rate) > 0.15 * std::max(a.rate, b.rate)) return a.rate > b.rate;
    if (std::abs(a.pressure - b.pressure) > 1e-9) return a.pressure < b.pressure;
    if (a.is_home != b.is_home) return a.is_home;
    return a.name < b.name;
  });
  std::vector<std::string> out;
  for (const Scored& s : scored) out.push_back(s.name);
  return out;
}

PendingPlacements::Hold& PendingPlacements::Hold::operator=(Hold&& o) noexcept {
  if (this != &o) {
    Release();
    counts_ = std::move(o.counts_);
    node_ = std::move(o.node_);
    o.counts_.reset();
  }
  return *this;
}

void PendingPlacements::Hold::Release() {
  std::shared_ptr<std::map<std::string, int>> counts = counts_.lock();
  counts_.reset();
  if (!counts) return;
  auto it = counts->find(node_);
  if (it != counts->end() && --it->second <= 0) counts->erase(it);
}

PendingPlacements::Hold PendingPlacements::Take(const std::string& node) {
  ++(*counts_)[node];
  Hold h;
  h.counts_ = counts_;
  h.node_ = node;
  return h;
}

int PendingPlacements::count(const std::string& node) const {
  auto it = counts_->find(node);
  return it == counts_->end() ? 0 : it->second;
}

int PendingPlacements::total() const {
  int n = 0;
  for (const auto& [node, c] : *counts_) n += c;
  return n;
}

}  // namespace roam
