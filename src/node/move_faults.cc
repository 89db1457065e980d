#include "node/move_faults.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>

#include "common/file_util.h"

namespace roam {

MoveFaults MoveFaults::FromEnvironment(const std::string& run_dir) {
  MoveFaults f;
  const char* on = getenv("ROAM_TEST_FAULTS");
  f.enabled_ = on != nullptr && std::string(on) == "1";
  f.file_ = run_dir + "/move-fault";
  if (f.enabled_) spdlog::warn("fault injection is on (ROAM_TEST_FAULTS=1): {}", f.file_);
  return f;
}

MoveFaults::Action MoveFaults::At(const char* phase) const {
  if (!enabled_) return Action::kNone;
  Result<std::string> text = ReadFile(file_);
  if (!text.ok()) return Action::kNone;
  std::istringstream in(*text);
  std::string want, action;
  in >> want >> action;
  if (want != phase) return Action::kNone;
  unlink(file_.c_str());
  spdlog::warn("injected fault at {}: {}", phase, action);
  if (action == "die") {
    kill(getpid(), SIGKILL);
    pause();
  }
  return action == "cut" ? Action::kCut : Action::kNone;
}

}  // namespace roam
