#include "cli/cli_error.h"

#include <cstdio>

namespace roam {

int Fail(const std::string& command, const std::string& message, int exit_code) {
  fprintf(stderr, "roam %s: %s\n", command.c_str(), message.c_str());
  return exit_code;
}

int Fail(const std::string& command, const Status& st, int exit_code) {
  return Fail(command, st.message(), exit_code);
}

}  // namespace roam
