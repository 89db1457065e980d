#include "node/link_pool.h"

#include <spdlog/spdlog.h>

namespace roam {

LinkPool::LinkPool(asio::io_context& io, LinkIdentity self, LinkMux::OnSession on_incoming)
    : io_(io),
      self_(std::move(self)),
      on_incoming_(std::move(on_incoming)),
      acceptor_(io, self_, [this](Result<std::shared_ptr<LinkConnection>> r, const LinkPeer& peer) {
        if (!r.ok()) {
          spdlog::debug("refused a node link from {}: {}", peer.node.empty() ? "?" : peer.node, r.status().message());
          return;
        }
        Adopt(*r, peer, false);
      }) {}

Status LinkPool::Listen(const std::string& bind, uint16_t port) { return acceptor_.Listen(bind, port); }

std::shared_ptr<LinkMux> LinkPool::Adopt(std::shared_ptr<LinkConnection> conn, const LinkPeer& peer, bool dialer) {
  auto mux = std::make_shared<LinkMux>(std::move(conn), peer, dialer);
  muxes_.push_back(mux);
  // The newest connection with a peer takes its new sessions; an older one
  // (both sides dialled at once) serves the sessions it has until it ends.
  if (!peer.address.empty()) by_address_[peer.address] = mux;
  mux->Start(on_incoming_, [this, node = peer.node](const std::string& why) {
    spdlog::debug("node link with {} ended: {}", node, why);
    muxes_.remove_if([](const std::shared_ptr<LinkMux>& m) { return m->closed(); });  // it is, by now
  });
  spdlog::debug("node link with {} ({}) open, {} in all", peer.node, dialer ? "dialled" : "accepted", muxes_.size());
  return mux;
}

void LinkPool::Open(const std::string& address, LinkReady done) {
  auto it = by_address_.find(address);
  if (it != by_address_.end()) {
    std::shared_ptr<LinkMux> mux = it->second.lock();
    if (mux && !mux->closed()) {
      asio::post(io_, [mux, done = std::move(done)] {
        if (mux->closed()) return done(Status::Error(StatusCode::kUnavailable, "node link with " + mux->peer() + " ended"), mux->peer());
        done(mux->Open(), mux->peer());
      });
      return;
    }
    by_address_.erase(it);
  }
  std::vector<LinkReady>& waiting = dialing_[address];
  waiting.push_back(std::move(done));
  if (waiting.size() > 1) return;
  ConnectLink(io_, address, self_, [this, address](Result<std::shared_ptr<LinkConnection>> r, const LinkPeer& peer) {
    std::vector<LinkReady> waiters = std::move(dialing_[address]);
    dialing_.erase(address);
    if (!r.ok()) {
      for (auto& w : waiters) w(r.status(), peer.node);
      return;
    }
    // Sessions go where we dialled, whatever address the peer gives.
    std::shared_ptr<LinkMux> mux = Adopt(*r, LinkPeer{peer.node, address}, true);
    for (auto& w : waiters) w(mux->Open(), peer.node);
  });
}

size_t LinkPool::sessions() const {
  size_t n = 0;
  for (const auto& m : muxes_) n += m->sessions();
  return n;
}

void LinkPool::Drop(const std::string& address, const std::string& why) {
  by_address_.erase(address);
  std::vector<std::shared_ptr<LinkMux>> ending;
  for (auto& m : muxes_) {
    if (m->address() == address) ending.push_back(m);
  }
  for (auto& m : ending) m->Close(why);
}

}  // namespace roam
