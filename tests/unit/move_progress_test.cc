// MoveMeter (src/node/move_progress.h): what the home tells `roam migrate`
// about a move under way.
#include "node/move_progress.h"

#include <gtest/gtest.h>

namespace roam {
namespace {

using Clock = MoveMeter::Clock;
using std::chrono::milliseconds;

pb::MoveProgress Report(const std::string& phase, uint32_t rounds, uint64_t bytes) {
  pb::MoveProgress r;
  r.set_phase(phase);
  r.set_rounds(rounds);
  r.set_bytes_sent(bytes);
  return r;
}

TEST(MoveMeter, RateIsBytesSinceTheLastReportOverItsTime) {
  const Clock::time_point t0{};
  MoveMeter m;
  m.Begin("n1:42", "n2", "n3", t0);
  EXPECT_EQ(m.Snapshot(t0).phase(), "starting");
  m.Report(Report("pre-copy", 1, 100 << 20), t0 + milliseconds(500));
  pb::MoveProgress p = m.Snapshot(t0 + milliseconds(600));
  EXPECT_EQ(p.gpid(), "n1:42");
  EXPECT_EQ(p.to(), "n3");
  EXPECT_EQ(p.phase(), "pre-copy");
  EXPECT_EQ(p.rounds(), 1u);
  EXPECT_DOUBLE_EQ(p.rate_bps(), 200.0 * (1 << 20));
  EXPECT_DOUBLE_EQ(p.elapsed_ms(), 600);
  m.Report(Report("", 2, 150 << 20), t0 + milliseconds(750));
  p = m.Snapshot(t0 + milliseconds(750));
  EXPECT_EQ(p.phase(), "pre-copy");  // "" keeps the phase
  EXPECT_EQ(p.rounds(), 2u);
  EXPECT_DOUBLE_EQ(p.rate_bps(), 200.0 * (1 << 20));
}

TEST(MoveMeter, ReportsThatCrossNeverGoBackwards) {
  const Clock::time_point t0{};
  MoveMeter m;
  m.Begin("n1:42", "n2", "n3", t0);
  m.Report(Report("frozen", 3, 300), t0 + milliseconds(100));
  m.Report(Report("", 2, 200), t0 + milliseconds(200));  // older, arrived late
  pb::MoveProgress p = m.Snapshot(t0 + milliseconds(200));
  EXPECT_EQ(p.rounds(), 3u);
  EXPECT_EQ(p.bytes_sent(), 300u);
  m.Report(Report("", 3, 300), t0 + milliseconds(1500));  // stalled a second
  EXPECT_EQ(m.Snapshot(t0 + milliseconds(1500)).rate_bps(), 0);
}

}  // namespace
}  // namespace roam
