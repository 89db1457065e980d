// Memory ushering's decision (docs/BALANCING.md): how much memory a node
// must move away, and now, so that the kernel's OOM killer never acts.
// Pure logic, no I/O, time passed in: roamd feeds it the node's free
// memory every load sample and moves its largest processes away until
// what leaves covers the deficit.
//
// A threshold alone comes too late for a process that grows fast: at
// 50 MiB/s a node of 400 MiB crosses a 15% floor and its limit within the
// same second, before a move of the grower can end. So the floor must hold
// not only now but over a horizon (the time to notice and to move), at the
// rate free memory has been falling.
#pragma once

#include <cstdint>

namespace roam {

struct UsherParams {
  double free_share = 0.15;   // usher_free_percent / 100: the floor, a share of the total (0: no floor)
  double psi = 25;            // usher_psi_percent: above it, move one process (0: never)
  int64_t horizon_ms = 3000;  // usher_horizon_ms: how long the floor must hold at the present rate
};

// How fast a node's free memory falls: an average of the last samples'
// slopes, in bytes per second (negative while it rises).
class MemoryTrend {
 public:
  void Add(int64_t now_ms, uint64_t free_bytes);
  double fall_rate() const { return rate_; }

 private:
  bool have_ = false;
  int64_t last_ms_ = 0;
  uint64_t last_free_ = 0;
  double rate_ = 0;
};

// Bytes the node should move away now (0: none). `leaving` bytes are on
// their way out already. Under memory pressure above `psi` with nothing
// leaving, at least 1 (move one process).
uint64_t UsherDeficit(const UsherParams& p, uint64_t total, uint64_t free, double pressure, double fall_rate,
                      uint64_t leaving);

}  // namespace roam
