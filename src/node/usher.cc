#include "node/usher.h"

#include <algorithm>
#include <cmath>

namespace roam {

void MemoryTrend::Add(int64_t now_ms, uint64_t free_bytes) {
  if (have_ && now_ms > last_ms_) {
    double slope = (static_cast<double>(last_free_) - static_cast<double>(free_bytes)) * 1000.0 /
                   static_cast<double>(now_ms - last_ms_);
    // Half the weight on the last slope: a job that starts growing is
    // seen within two samples, one that stops within three.
    rate_ = std::isfinite(slope) ? 0.5 * rate_ + 0.5 * slope : rate_;
  }
  have_ = true;
  last_ms_ = now_ms;
  last_free_ = free_bytes;
}

uint64_t UsherDeficit(const UsherParams& p, uint64_t total, uint64_t free, double pressure, double fall_rate,
                      uint64_t leaving) {
  double need = 0;
  if (p.free_share > 0 && total > 0) {
    const double floor = p.free_share * static_cast<double>(total);
    const double falling = std::max(0.0, fall_rate) * static_cast<double>(std::max<int64_t>(p.horizon_ms, 0)) / 1000.0;
    need = floor - (static_cast<double>(free) - falling);
  }
  need -= static_cast<double>(leaving);
  if (p.psi > 0 && pressure > p.psi && leaving == 0) need = std::max(need, 1.0);
  return need > 0 ? static_cast<uint64_t>(need) : 0;
}

}  // namespace roam
