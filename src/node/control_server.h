// ControlServer: the local UNIX socket `roam` talks to. Accepts any local
// user (the socket is mode 0666); each request is passed to the handler
// with the peer's uid from SO_PEERCRED, and the handler decides what that
// uid may do (root: everything; others: read-only views). A client that
// sends garbage gets an error reply and is disconnected; a slow client only
// holds its own connection.
#pragma once

#include <asio.hpp>
#include <functional>
#include <string>

#include "common/status.h"
#include "control.pb.h"

namespace roam {

class ControlServer {
 public:
  using Handler = std::function<pb::ControlReply(const pb::ControlRequest&, uid_t peer_uid)>;

  ControlServer(asio::io_context& io, Handler handler);
  ~ControlServer();
  // Creates the socket at `path` (its directory too), replacing a stale one.
  Status Listen(const std::string& path);

 private:
  class Connection;
  void Accept();

  asio::io_context& io_;
  Handler handler_;
  asio::local::stream_protocol::acceptor acceptor_;
  std::string path_;
};

}  // namespace roam
