// CommandFilter: which of roam's subcommands to define before parsing.
// Defining all of them (~30 CLI11 apps and ~90 options) took 0.55-0.7 ms on
// our VMs, a quarter of a whole `roam ps` and of what a short `roam run`
// costs over a local fork+exec (docs/BENCHMARKS.md, "Remote start"). Parsing
// needs only the subcommand named on the command line. When none is named
// (`roam`, `roam --help`, `roam --version`) every subcommand is defined, so
// that help lists them all; and a name no definition claims is parsed again
// with all of them, so that the error is CLI11's usual one.
#pragma once

#include <string>
#include <string_view>

namespace roam {

class CommandFilter {
 public:
  // Every subcommand.
  CommandFilter() = default;
  // The subcommand named by argv: the first argument that is not one of
  // roam's own options (--socket VALUE, --socket=VALUE); none if an option
  // other than --socket comes first (--help, --version, a mistake).
  CommandFilter(int argc, char* const* argv);

  // Whether to define the top-level subcommand `name`. Notes a match.
  bool operator()(std::string_view name) {
    if (asked_.empty()) return true;
    if (name != asked_) return false;
    matched_ = true;
    return true;
  }
  // A subcommand was named and no definition claimed it.
  bool missed() const { return !asked_.empty() && !matched_; }
  const std::string& asked() const { return asked_; }

 private:
  std::string asked_;
  bool matched_ = false;
};

}  // namespace roam
