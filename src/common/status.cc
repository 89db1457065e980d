#include "common/status.h"

#include <cstring>

namespace roam {

Status Status::Errno(const std::string& operation, int err) {
  return Status(CodeOfErrno(err), operation + ": " + std::strerror(err));
}

StatusCode CodeOfErrno(int err) {
  switch (err) {
    case ENOENT:
    case ESRCH:
      return StatusCode::kNotFound;
    case EPERM:
    case EACCES:
      return StatusCode::kPermission;
    case EEXIST:
    case EBUSY:
    case EAGAIN:
      return StatusCode::kBusy;
    case ENOMEM:
    case ENOSPC:
      return StatusCode::kNoRoom;
    case EINVAL:
      return StatusCode::kInvalid;
    case ECONNREFUSED:
    case ECONNRESET:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case ETIMEDOUT:
    case EPIPE:
      return StatusCode::kUnavailable;
    default:
      return StatusCode::kInternal;
  }
}

bool AnotherNodeMightDo(StatusCode code) {
  switch (code) {
    case StatusCode::kBusy:
    case StatusCode::kNoRoom:
    case StatusCode::kRefused:
    case StatusCode::kMismatch:
    case StatusCode::kUnavailable:
      return true;
    default:
      return false;
  }
}

const char* StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kInternal: return "internal";
    case StatusCode::kInvalid: return "invalid";
    case StatusCode::kNotFound: return "not-found";
    case StatusCode::kPermission: return "permission";
    case StatusCode::kBusy: return "busy";
    case StatusCode::kNoRoom: return "no-room";
    case StatusCode::kRefused: return "refused";
    case StatusCode::kCantMove: return "cant-move";
    case StatusCode::kMismatch: return "mismatch";
    case StatusCode::kUnavailable: return "unavailable";
  }
  return "internal";
}

}  // namespace roam
