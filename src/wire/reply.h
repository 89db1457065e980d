// Turning the outcome of an asynchronous request into its reply message,
// the same way for the control socket (ControlReply) and node links
// (LinkReply): the value goes where `set` puts it, an error into `error`
// and its kind into `code`; and back into a Status on the asking side.
#pragma once

#include <functional>
#include <string>
#include <utility>

#include "common/status.h"

namespace roam {

template <typename ReplyMsg>
void SetReplyError(ReplyMsg* m, const Status& st) {
  m->set_error(st.message());
  m->set_code(static_cast<int>(st.code()));
}

// An error that came over the wire as a code and a line. A code this node
// does not know (or none, from an older node) reads as kInternal.
inline Status WireStatus(int code, std::string message) {
  if (code <= 0 || code > static_cast<int>(StatusCode::kUnavailable)) return Status::Error(std::move(message));
  return Status::Error(static_cast<StatusCode>(code), std::move(message));
}

// Ok when the reply carries no error.
template <typename ReplyMsg>
Status ReplyStatus(const ReplyMsg& m) {
  return m.error().empty() ? Status::Ok() : WireStatus(m.code(), m.error());
}

template <typename ReplyMsg, typename T, typename Set>
std::function<void(Result<T>)> ReplyWith(std::function<void(ReplyMsg)> send, Set set) {
  return [send = std::move(send), set](Result<T> r) {
    ReplyMsg m;
    if (r.ok()) {
      set(m, *r);
    } else {
      SetReplyError(&m, r.status());
    }
    send(std::move(m));
  };
}

// For requests whose outcome is only an error line ("" when done).
template <typename ReplyMsg>
std::function<void(const std::string&)> ReplyError(std::function<void(ReplyMsg)> send) {
  return [send = std::move(send)](const std::string& error) {
    ReplyMsg m;
    m.set_error(error);
    send(std::move(m));
  };
}

}  // namespace roam
