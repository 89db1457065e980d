// Status and Result<T>: errors as values. Nothing in roam throws across a
// module boundary; a failing call returns a Status that names the operation
// and the object ("open /proc/4242/maps: No such file or directory"), and a
// small code saying what a caller can do about it: the home asks another
// node when a target answers kBusy, kNoRoom, kRefused, kMismatch or
// kUnavailable, and stops at once on kCantMove or kPermission. The codes
// travel between nodes (proto/link.proto ErrorCode, same numbers).
#pragma once

#include <cerrno>
#include <string>
#include <utility>
#include <variant>

namespace roam {

enum class StatusCode : int {
  kOk = 0,
  kInternal = 1,     // not classified: a failed system call, a broken invariant
  kInvalid = 2,      // the request itself is wrong (a bad GPID, option, image)
  kNotFound = 3,     // no such process, node, file
  kPermission = 4,   // the caller may not do this
  kBusy = 5,         // not now: a PID taken, a process already moving or stopped
  kNoRoom = 6,       // the node lacks memory for it
  kRefused = 7,      // the node refuses by policy: blocked, draining, locked
  kCantMove = 8,     // the process holds what the engine cannot carry
  kMismatch = 9,     // the node differs: a file, its cwd, a CPU feature
  kUnavailable = 10, // a node or link is unreachable or was lost
};

class Status {
 public:
  Status() = default;  // ok
  static Status Ok() { return Status(); }
  static Status Error(std::string message) { return Status(StatusCode::kInternal, std::move(message)); }
  // REQUIRES: code != kOk.
  static Status Error(StatusCode code, std::string message) { return Status(code, std::move(message)); }
  // "OPERATION: strerror(err)", coded from err (ENOENT -> kNotFound, ...).
  // REQUIRES: err != 0.
  static Status Errno(const std::string& operation, int err = errno);

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // The same error with `prefix` before its message ("cannot reach n2: ...").
  Status Prefixed(const std::string& prefix) const { return Status(code_, prefix + message_); }

 private:
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// The code for an errno value. Pure.
StatusCode CodeOfErrno(int err);
// Whether another node could do what this one could not: the failure is
// the node's (busy, full, blocked, different, unreachable), not the
// process's or the caller's. Pure.
bool AnotherNodeMightDo(StatusCode code);
// "busy", "no-room", ... for logs and JSON. Pure.
const char* StatusCodeName(StatusCode code);

// Either a value or a failed Status.
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}                      // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}               // NOLINT: REQUIRES !status.ok()

  bool ok() const { return std::holds_alternative<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T& value() & { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }
  // The error; Status::Ok() when a value is held.
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace roam
