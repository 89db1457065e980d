#include "common/status.h"

#include <cstring>

namespace roam {

Status Status::Errno(const std::string& operation, int err) {
  return Status(operation + ": " + std::strerror(err));
}

}  // namespace roam
