// Memory ushering's decision (node/usher.h): when to move, how much.
#include "node/usher.h"

#include <gtest/gtest.h>

namespace roam {
namespace {

constexpr uint64_t kMiB = 1 << 20;

TEST(MemoryTrend, FollowsTheFallOfFreeMemory) {
  MemoryTrend t;
  t.Add(0, 400 * kMiB);
  EXPECT_EQ(t.fall_rate(), 0);  // one sample: no slope yet
  for (int s = 1; s <= 6; ++s) t.Add(s * 1000, (400 - 50 * s) * kMiB);
  EXPECT_NEAR(t.fall_rate(), 50.0 * kMiB, 1.0 * kMiB);  // 50 MiB/s, learnt within a few samples
  t.Add(7000, 150 * kMiB);                           // the grower ended: memory comes back
  t.Add(8000, 150 * kMiB);
  EXPECT_LT(t.fall_rate(), 0);
  t.Add(8000, 1);  // no time passed: ignored
  EXPECT_LT(t.fall_rate(), 0);
}

TEST(UsherDeficit, AFloorAloneWhenNothingGrows) {
  UsherParams p;  // 15%, 3 s
  EXPECT_EQ(UsherDeficit(p, 400 * kMiB, 100 * kMiB, 0, 0, 0), 0u);
  EXPECT_EQ(UsherDeficit(p, 400 * kMiB, 50 * kMiB, 0, 0, 0), 10 * kMiB);  // 60 MiB floor
  EXPECT_EQ(UsherDeficit(p, 400 * kMiB, 50 * kMiB, 0, -20.0 * kMiB, 0), 10 * kMiB);  // rising: no credit
  EXPECT_EQ(UsherDeficit(p, 400 * kMiB, 50 * kMiB, 0, 0, 10 * kMiB), 0u);  // leaving covers it
}

TEST(UsherDeficit, AGrowerIsMovedBeforeItCrossesTheFloor) {
  UsherParams p;
  // 237 MiB free, falling 55 MiB/s: 72 MiB left in 3 s, above the floor.
  EXPECT_EQ(UsherDeficit(p, 400 * kMiB, 237 * kMiB, 0, 55.0 * kMiB, 0), 0u);
  // 180 MiB free: 15 MiB in 3 s, 45 MiB under the floor: move now.
  EXPECT_EQ(UsherDeficit(p, 400 * kMiB, 180 * kMiB, 0, 55.0 * kMiB, 0), 45 * kMiB);
  // A 60 MiB process on its way out covers it.
  EXPECT_EQ(UsherDeficit(p, 400 * kMiB, 180 * kMiB, 0, 55.0 * kMiB, 60 * kMiB), 0u);
  p.horizon_ms = 0;  // the plain threshold of old
  EXPECT_EQ(UsherDeficit(p, 400 * kMiB, 180 * kMiB, 0, 55.0 * kMiB, 0), 0u);
}

TEST(UsherDeficit, PressureMovesOneProcessAtATime) {
  UsherParams p;
  EXPECT_EQ(UsherDeficit(p, 400 * kMiB, 300 * kMiB, 30, 0, 0), 1u);
  EXPECT_EQ(UsherDeficit(p, 400 * kMiB, 300 * kMiB, 30, 0, 5 * kMiB), 0u);
  EXPECT_EQ(UsherDeficit(p, 400 * kMiB, 300 * kMiB, 20, 0, 0), 0u);
  p.psi = 0;
  EXPECT_EQ(UsherDeficit(p, 400 * kMiB, 300 * kMiB, 99, 0, 0), 0u);
  p.free_share = 0;  // both tests off: never
  EXPECT_EQ(UsherDeficit(p, 400 * kMiB, 0, 99, 1e9, 0), 0u);
  EXPECT_EQ(UsherDeficit(p, 0, 0, 0, 0, 0), 0u);
}

}  // namespace
}  // namespace roam
