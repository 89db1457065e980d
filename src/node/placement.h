// Placement: where a new process should run so that it finishes soonest,
// from the nodes' load vectors. Pure logic; roamd feeds it its membership
// table and its own count of processes it has placed.
//
// A node's expected rate for one more CPU-bound process is
//   speed * min(1, cpu_share / (demand + 1))
// where demand = max(CPUs busy in its last load vector, processes this home
// runs there now): the vector lags by up to a few seconds, and our own
// count covers processes placed since. Highest rate first; ties go to the
// node with less demand per CPU share, then to home (no transfer), then by
// name. Nodes dead, suspect, without a load vector, refusing guests or
// short of memory are not candidates, except home itself (its own
// processes are not guests).
#pragma once

#include <cstdint>
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
  int ours_running = 0;  // this home's processes running there now
};

constexpr uint64_t kMinGuestMemory = 64ull << 20;

// Candidates, best first. Never empty when a home is given.
std::vector<std::string> RankNodes(const std::vector<PlacementNode>& nodes);

}  // namespace roam
