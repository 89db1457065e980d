// ControlServer: the local UNIX socket `roam` talks to. Accepts any local
// user (the socket is mode 0666); each request is passed to the handler
// with the peer's credentials from SO_PEERCRED, and the handler decides
// what that uid may do (root: everything; others: read-only views and their
// own processes). The handler answers through `reply`, at once or later
// (a request may need other nodes). A run request takes the connection
// over: the socket is handed to the run handler and carries StreamFrames
// from then on. A client that sends garbage gets an error reply and is
// disconnected; a slow client only holds its own connection.
#pragma once

#include <asio.hpp>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "control.pb.h"

namespace roam {

class ControlServer {
 public:
  struct Peer {
    pid_t pid = 0;
    uid_t uid = static_cast<uid_t>(-1);
    gid_t gid = static_cast<gid_t>(-1);
    std::vector<gid_t> groups;  // supplementary, as the kernel saw them at connect()
  };
  using Reply = std::function<void(const pb::ControlReply&)>;
  using Handler = std::function<void(const pb::ControlRequest&, const Peer&, Reply reply)>;
  using RunHandler =
      std::function<void(const pb::RunRequest&, const Peer&, asio::local::stream_protocol::socket socket)>;

  ControlServer(asio::io_context& io, Handler handler, RunHandler run_handler);
  ~ControlServer();
  // Creates the socket at `path` (its directory too), replacing a stale one.
  Status Listen(const std::string& path);

 private:
  class Connection;
  void Accept();

  asio::io_context& io_;
  Handler handler_;
  RunHandler run_handler_;
  asio::local::stream_protocol::acceptor acceptor_;
  std::string path_;
};

// What a peer is, as requests about processes name it: its uid, gid, user
// name, and supplementary groups (the kernel's view of the caller, read
// from /proc, not its word).
pb::Credentials CredentialsOf(const ControlServer::Peer& peer);

}  // namespace roam
