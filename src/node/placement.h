// Placement: where a new process should run so that it finishes soonest,
// from the nodes' load vectors. Pure logic; roamd feeds it its membership
// table and its own count of processes it has placed.
//
// A node's expected rate for one more CPU-bound process is
//   speed * min(1, cpu_share / (demand + 1))
// where demand = max(CPUs busy in its last load vector, processes this home
// runs there now or has just decided to place there): the vector lags by up
// to a few seconds, and our own count covers processes placed since, from
// the moment each placement is decided (PendingPlacements), so that a burst
// of `roam run`s sees each other. Taking the best node for each new job in
// turn spreads a burst in proportion to the nodes' rates (the greedy rule
// that minimises the makespan of equal jobs). Highest rate first; ties go to the
// node with less demand per CPU share, then to home (no transfer), then by
// name. Nodes dead, suspect, without a load vector, refusing guests or
// short of memory are not candidates, except home itself (its own
// processes are not guests).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gossip.pb.h"

namespace roam {

struct PlacementNode {
  std::string name;
  bool is_home = false;
  bool alive = false;
  bool has_load = false;
  pb::LoadVector load;
  int ours_running = 0;  // this home's processes there now, placed or being placed
};

constexpr uint64_t kMinGuestMemory = 64ull << 20;

// Candidates, best first. Never empty when a home is given.
std::vector<std::string> RankNodes(const std::vector<PlacementNode>& nodes);

// Placements decided but not yet running: a spawn sent to a guest that has
// not answered. Each is a Hold, counted from Take() until it is released:
// by Release() once the home's record of the process counts it instead, or
// when the attempt fails (the Hold is destroyed). Holds may outlive the
// book (they sit in callbacks); they then release nothing.
class PendingPlacements {
 public:
  class Hold {
   public:
    Hold() = default;
    Hold(Hold&& o) noexcept : counts_(std::move(o.counts_)), node_(std::move(o.node_)) { o.counts_.reset(); }
    Hold& operator=(Hold&& o) noexcept;
    Hold(const Hold&) = delete;
    Hold& operator=(const Hold&) = delete;
    ~Hold() { Release(); }
    void Release();

   private:
    friend class PendingPlacements;
    std::weak_ptr<std::map<std::string, int>> counts_;
    std::string node_;
  };

  Hold Take(const std::string& node);
  int count(const std::string& node) const;
  int total() const;

 private:
  std::shared_ptr<std::map<std::string, int>> counts_ = std::make_shared<std::map<std::string, int>>();
};

}  // namespace roam
