// Node links: authenticated TCP connections between roamds (proto/link.proto).
// ConnectLink dials a peer and runs the client side of the handshake;
// LinkAcceptor listens on the node's TCP port and runs the server side.
// Either way the caller gets a LinkConnection whose every further frame is
// authenticated with per-connection keys derived from the cluster key.
// A handshake that has not finished in 10 s is abandoned. The connection
// then carries sessions (node/link_mux.h); node/link_pool.h keeps one per
// pair of nodes.
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

using LinkConnection = FrameChannel<asio::ip::tcp::socket, pb::LinkFrame>;

struct LinkIdentity {
  std::string cluster;
  std::string node;
  std::optional<ClusterKey> key;  // none: insecure mode (loopback only)
  std::string address;            // where this node takes links, told to peers
};

// Who is at the other end, as its hello said (after its proof checked).
struct LinkPeer {
  std::string node;
  std::string address;
};

// `done` gets an authenticated connection, not yet started for further
// frames: the callee must call set_handlers() before returning.
using ConnectionReady = std::function<void(Result<std::shared_ptr<LinkConnection>>, const LinkPeer& peer)>;

void ConnectLink(asio::io_context& io, const std::string& address, const LinkIdentity& self, ConnectionReady done);

class LinkAcceptor {
 public:
  LinkAcceptor(asio::io_context& io, LinkIdentity self, ConnectionReady on_link);
  Status Listen(const std::string& bind, uint16_t port);

 private:
  void Accept();

  asio::io_context& io_;
  LinkIdentity self_;
  ConnectionReady on_link_;
  asio::ip::tcp::acceptor acceptor_;
};

}  // namespace roam
