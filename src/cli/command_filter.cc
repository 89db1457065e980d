#include "cli/command_filter.h"

namespace roam {

CommandFilter::CommandFilter(int argc, char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--socket") {
      ++i;  // its value
      continue;
    }
    if (a.rfind("--socket=", 0) == 0) continue;
    if (!a.empty() && a[0] != '-') asked_ = a;
    return;
  }
}

}  // namespace roam
