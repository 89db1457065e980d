#include "node/move_progress.h"

#include <algorithm>

namespace roam {

void MoveMeter::Begin(const std::string& gpid, const std::string& from, const std::string& to,
                      Clock::time_point now) {
  p_.Clear();
  p_.set_gpid(gpid);
  p_.set_from(from);
  p_.set_to(to);
  p_.set_phase("starting");
  start_ = last_ = now;
}

void MoveMeter::Report(const pb::MoveProgress& r, Clock::time_point now) {
  if (!r.phase().empty()) p_.set_phase(r.phase());
  p_.set_rounds(std::max(p_.rounds(), r.rounds()));
  if (r.bytes_sent() > p_.bytes_sent()) {
    const double secs = std::chrono::duration<double>(now - last_).count();
    if (secs > 0) p_.set_rate_bps(static_cast<double>(r.bytes_sent() - p_.bytes_sent()) / secs);
    p_.set_bytes_sent(r.bytes_sent());
    last_ = now;
  } else if (std::chrono::duration<double>(now - last_).count() > 1.0) {
    p_.set_rate_bps(0);  // nothing moved for a second
  }
}

pb::MoveProgress MoveMeter::Snapshot(Clock::time_point now) const {
  pb::MoveProgress p = p_;
  p.set_elapsed_ms(std::chrono::duration<double, std::milli>(now - start_).count());
  return p;
}

}  // namespace roam
