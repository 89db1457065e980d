#include "node/move_counters.h"

namespace roam {

void MoveCounters::Succeeded(double frozen_ms) {
  ++succeeded_;
  frozen_sum_ += frozen_ms;
  for (size_t i = 0; i < kFrozenBoundsMs.size(); ++i) {
    if (frozen_ms <= kFrozenBoundsMs[i]) {
      ++counts_[i];
      break;
    }
  }
}

void MoveCounters::CopyTo(pb::Counters* c) const {
  c->set_migrations_started(started_);
  c->set_migrations_succeeded(succeeded_);
  c->set_migrations_failed(failed_);
  c->clear_frozen_ms_bounds();
  c->clear_frozen_ms_counts();
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kFrozenBoundsMs.size(); ++i) {
    cumulative += counts_[i];
    c->add_frozen_ms_bounds(kFrozenBoundsMs[i]);
    c->add_frozen_ms_counts(cumulative);
  }
  c->set_frozen_ms_sum(frozen_sum_);
}

}  // namespace roam
