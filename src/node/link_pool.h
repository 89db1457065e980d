// LinkPool: this node's links to other roamds, one connection per peer,
// opened when first needed, kept open, and shared by every session between
// the pair (node/link_mux.h) in both directions: a connection a peer
// opened to us carries our sessions to it too.
//
// A connection ends when the peer closes it or vanishes (TCP keep-alive,
// node_link.cc), or when membership declares the peer dead or gone
// (Drop); the next Open dials again.
//
// Single-threaded, on `io`.
#pragma once

#include <asio.hpp>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "node/link_mux.h"
#include "node/node_link.h"

namespace roam {

// `done` gets a new session with the peer named `peer`. It must set the
// session's handlers before returning, or keep it to set them later.
using LinkReady = std::function<void(Result<std::shared_ptr<LinkSession>>, const std::string& peer)>;

class LinkPool {
 public:
  // `on_incoming` gets each session a peer opens here.
  LinkPool(asio::io_context& io, LinkIdentity self, LinkMux::OnSession on_incoming);
  Status Listen(const std::string& bind, uint16_t port);

  // A new session with the roamd at `address` (host:port), over the
  // connection with it, dialled if there is none. `done` runs later, never
  // inside Open.
  void Open(const std::string& address, LinkReady done);
  // Ends the connections with the peer at `address` (declared dead or
  // gone): its sessions close with `why`.
  void Drop(const std::string& address, const std::string& why);
  size_t connections() const { return muxes_.size(); }
  size_t sessions() const;

 private:
  std::shared_ptr<LinkMux> Adopt(std::shared_ptr<LinkConnection> conn, const LinkPeer& peer, bool dialer);

  asio::io_context& io_;
  LinkIdentity self_;
  LinkMux::OnSession on_incoming_;
  LinkAcceptor acceptor_;
  std::list<std::shared_ptr<LinkMux>> muxes_;                 // every open connection
  std::map<std::string, std::weak_ptr<LinkMux>> by_address_;  // the one new sessions use
  std::map<std::string, std::vector<LinkReady>> dialing_;     // sessions waiting for a connection
};

}  // namespace roam
