// MoveFaults: the fault-injection seam of migration, for tests only (as
// LevelDB's FaultInjectionTestEnv). Off unless roamd was started with
// ROAM_TEST_FAULTS=1 in its environment. Then, each time a move reaches a
// phase, roamd reads the file `move-fault` in its run directory; if it holds
// "PHASE ACTION" for this phase, the file is removed and ACTION happens:
//   die  roamd kills itself with SIGKILL, as `kill -9` would
//   cut  the link that phase uses is closed abruptly, as a network cut would
// Phases, in order: source-precopy, target-staging (pre-copy, while it
// runs), source-frozen, source-streaming, target-receiving,
// target-restored, source-handed, home-committing, target-go.
#pragma once

#include <string>

namespace roam {

class MoveFaults {
 public:
  enum class Action { kNone, kDie, kCut };

  MoveFaults() = default;
  // Enabled by ROAM_TEST_FAULTS=1; `run_dir` holds the `move-fault` file.
  static MoveFaults FromEnvironment(const std::string& run_dir);

  // What to do at `phase` (kDie never returns).
  Action At(const char* phase) const;

 private:
  bool enabled_ = false;
  std::string file_;
};

}  // namespace roam
