// MoveMeter: what the home knows of a move under way, for `roam migrate`
// on a terminal (proto/session.proto MoveProgress). The source reports its
// phase, rounds and bytes a few times a second; the meter adds the time
// since the move began and the rate since the previous report. Pure: the
// time is passed in.
#pragma once

#include <chrono>
#include <string>

#include "session.pb.h"

namespace roam {

class MoveMeter {
 public:
  using Clock = std::chrono::steady_clock;

  void Begin(const std::string& gpid, const std::string& from, const std::string& to, Clock::time_point now);
  // A report from the source; `phase` "" keeps the last one. Bytes never go
  // backwards (reports may cross on the wire).
  void Report(const pb::MoveProgress& r, Clock::time_point now);
  void SetPhase(const std::string& phase) { p_.set_phase(phase); }
  // The last report with the elapsed time filled in.
  pb::MoveProgress Snapshot(Clock::time_point now) const;

 private:
  pb::MoveProgress p_;
  Clock::time_point start_{}, last_{};
};

}  // namespace roam
