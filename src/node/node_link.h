// Node links: authenticated TCP connections between roamds (proto/link.proto).
// ConnectLink dials a peer and runs the client side of the handshake;
// LinkAcceptor listens on the node's TCP port and runs the server side.
// Either way the caller gets a LinkChannel whose every further frame is
// authenticated with per-connection keys derived from the cluster key.
// A handshake that has not finished in 10 s is abandoned.
#pragma once

#include <asio.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "cluster/cluster_key.h"
#include "common/status.h"
#include "link.pb.h"
#include "node/frame_channel.h"

namespace roam {

using LinkChannel = FrameChannel<asio::ip::tcp::socket, pb::LinkFrame>;

struct LinkIdentity {
  std::string cluster;
  std::string node;
  std::optional<ClusterKey> key;  // none: insecure mode (loopback only)
};

// `done` gets an authenticated channel, not yet started for further frames:
// the callee must call set_handlers() before returning.
using LinkReady = std::function<void(Result<std::shared_ptr<LinkChannel>>, const std::string& peer)>;

void ConnectLink(asio::io_context& io, const std::string& address, const LinkIdentity& self, LinkReady done);

class LinkAcceptor {
 public:
  LinkAcceptor(asio::io_context& io, LinkIdentity self, LinkReady on_link);
  Status Listen(const std::string& bind, uint16_t port);

 private:
  void Accept();

  asio::io_context& io_;
  LinkIdentity self_;
  LinkReady on_link_;
  asio::ip::tcp::acceptor acceptor_;
};

}  // namespace roam
