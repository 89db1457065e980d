// Turning the outcome of an asynchronous request into its reply message,
// the same way for the control socket (ControlReply) and node links
// (LinkReply): the value goes where `set` puts it, an error into `error`.
#pragma once

#include <functional>
#include <string>
#include <utility>

#include "common/status.h"

namespace roam {

template <typename ReplyMsg, typename T, typename Set>
std::function<void(Result<T>)> ReplyWith(std::function<void(ReplyMsg)> send, Set set) {
  return [send = std::move(send), set](Result<T> r) {
    ReplyMsg m;
    if (r.ok()) {
      set(m, *r);
    } else {
      m.set_error(r.status().message());
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
