// MoveCounters: what /metrics tells of the moves of a home's processes
// (counts, and a histogram of frozen time). Pure; roamd feeds it every
// move it starts for a process of its own, and copies it into Counters.
#pragma once

#include <array>
#include <cstdint>

#include "control.pb.h"

namespace roam {

class MoveCounters {
 public:
  // Upper bounds of the frozen-time buckets, ms (+Inf is implied).
  static constexpr std::array<double, 10> kFrozenBoundsMs{5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000};

  void Started() { ++started_; }
  void Succeeded(double frozen_ms);
  void Failed() { ++failed_; }

  // Fills the migration fields of `c`.
  void CopyTo(pb::Counters* c) const;

 private:
  uint64_t started_ = 0, succeeded_ = 0, failed_ = 0;
  std::array<uint64_t, kFrozenBoundsMs.size()> counts_{};  // per bucket, not cumulative
  double frozen_sum_ = 0;
};

}  // namespace roam
