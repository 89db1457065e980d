#include "node/node_link.h"

#include <netinet/tcp.h>

namespace roam {

namespace {

constexpr uint32_t kLinkVersion = 2;  // 2: sessions over one connection per pair
constexpr auto kHandshakeTimeout = std::chrono::seconds(10);

pb::LinkFrame Hello(const LinkIdentity& self, const std::string& nonce) {
  pb::LinkFrame f;
  f.mutable_hello()->set_version(kLinkVersion);
  f.mutable_hello()->set_cluster(self.cluster);
  f.mutable_hello()->set_node(self.node);
  f.mutable_hello()->set_nonce(nonce);
  f.mutable_hello()->set_address(self.address);
  return f;
}

pb::LinkFrame Proof(const LinkIdentity& self, const char* label, const std::string& nc, const std::string& ns) {
  pb::LinkFrame f;
  if (self.key) {
    LinkCipher::Key mac = LinkCipher::Derive(*self.key, label, nc, ns);
    f.mutable_proof()->set_mac(std::string(reinterpret_cast<const char*>(mac.data()), mac.size()));
  } else {
    f.mutable_proof();
  }
  return f;
}

bool ProofOk(const LinkIdentity& self, const pb::LinkFrame& f, const char* label, const std::string& nc,
             const std::string& ns) {
  if (!f.has_proof()) return false;
  if (!self.key) return true;
  return LinkCipher::EqualMac(f.proof().mac(), LinkCipher::Derive(*self.key, label, nc, ns));
}

std::string HelloProblem(const LinkIdentity& self, const pb::LinkFrame& f) {
  if (!f.has_hello()) return "expected a hello";
  if (f.hello().version() != kLinkVersion) return "link version " + std::to_string(f.hello().version());
  if (f.hello().cluster() != self.cluster) return "peer is in cluster '" + f.hello().cluster() + "'";
  if (f.hello().nonce().size() != LinkCipher::kNonceBytes) return "bad nonce";
  return "";
}

std::unique_ptr<LinkCipher> Keys(const LinkIdentity& self, bool client, const std::string& nc,
                                 const std::string& ns) {
  if (!self.key) return nullptr;
  LinkCipher::Key c2s = LinkCipher::Derive(*self.key, "c2s", nc, ns);
  LinkCipher::Key s2c = LinkCipher::Derive(*self.key, "s2c", nc, ns);
  return client ? std::make_unique<LinkCipher>(c2s, s2c) : std::make_unique<LinkCipher>(s2c, c2s);
}

// A connection lives long and carries interactive sessions beside bulk
// ones: no Nagle delay; the kernel keeps at most kNotSentLowat unsent (so
// that the mux, not the socket buffer, decides what goes next); a peer that
// vanished without a word is noticed within about half a minute.
void TuneSocket(asio::ip::tcp::socket& s) {
  constexpr int kNotSentLowat = 128 << 10;
  asio::error_code ignored;
  s.set_option(asio::ip::tcp::no_delay(true), ignored);
  s.set_option(asio::socket_base::keep_alive(true), ignored);
  const int fd = s.native_handle();
  const int idle = 15, interval = 5, count = 3;
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
  setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &kNotSentLowat, sizeof kNotSentLowat);
}

// The state of one handshake, kept alive by the handlers that hold it.
struct Handshake {
  Handshake(asio::io_context& io) : timer(io) {}
  std::shared_ptr<LinkConnection> ch;
  LinkIdentity self;
  ConnectionReady done;
  std::string nc, ns;
  LinkPeer peer;
  asio::steady_timer timer;
  bool hello_seen = false;  // the peer's hello came; its proof is next
  bool finished = false;

  void Finish(Result<std::shared_ptr<LinkConnection>> r) {
    if (finished) return;
    finished = true;
    timer.cancel();
    done(std::move(r), peer);
  }
  void Fail(const std::string& why) {
    auto keep = ch;
    Finish(Status::Error(why));
    ch->set_handlers(nullptr, nullptr);
    ch->Close(why, false);
  }
  // The peer's proof checked: frames are authenticated from now on, and the
  // channel goes to its owner, who sets its handlers.
  void Authenticated(bool client) {
    ch->set_cipher(Keys(self, client, nc, ns));
    ch->set_handlers(nullptr, nullptr);
    Finish(ch);
  }
  void ArmTimeout(std::shared_ptr<Handshake> self_ptr) {
    timer.expires_after(kHandshakeTimeout);
    timer.async_wait([self_ptr](asio::error_code ec) {
      if (!ec) self_ptr->Fail("handshake timed out");
    });
  }
};

}  // namespace

void ConnectLink(asio::io_context& io, const std::string& address, const LinkIdentity& self, ConnectionReady done) {
  auto hs = std::make_shared<Handshake>(io);
  hs->self = self;
  hs->done = std::move(done);
  size_t colon = address.rfind(':');
  asio::error_code ec;
  asio::ip::address ip = asio::ip::make_address(address.substr(0, colon), ec);
  if (colon == std::string::npos || ec) {
    hs->Finish(Status::Error("bad node address " + address));
    return;
  }
  uint16_t port = static_cast<uint16_t>(std::stoi(address.substr(colon + 1)));
  hs->ch = std::make_shared<LinkConnection>(asio::ip::tcp::socket(io));
  hs->ArmTimeout(hs);
  hs->ch->socket().async_connect({ip, port}, [hs, address](asio::error_code ec2) {
    if (ec2) return hs->Fail("connect to " + address + ": " + ec2.message());
    TuneSocket(hs->ch->socket());
    hs->nc = LinkCipher::RandomNonce();
    hs->ch->Send(Hello(hs->self, hs->nc));
    hs->ch->Start(
        [hs](pb::LinkFrame& f) {
          if (!hs->hello_seen) {
            if (std::string why = HelloProblem(hs->self, f); !why.empty()) return hs->Fail(why);
            hs->ns = f.hello().nonce();
            hs->peer = {f.hello().node(), f.hello().address()};
            hs->hello_seen = true;
            return;
          }
          if (!ProofOk(hs->self, f, "server", hs->nc, hs->ns)) return hs->Fail("peer failed to prove the cluster key");
          hs->ch->Send(Proof(hs->self, "client", hs->nc, hs->ns));
          hs->Authenticated(true);
        },
        [hs](const std::string& why) { hs->Finish(Status::Error("link handshake: " + why)); });
  });
}

LinkAcceptor::LinkAcceptor(asio::io_context& io, LinkIdentity self, ConnectionReady on_link)
    : io_(io), self_(std::move(self)), on_link_(std::move(on_link)), acceptor_(io) {}

Status LinkAcceptor::Listen(const std::string& bind, uint16_t port) {
  asio::error_code ec;
  asio::ip::address ip = asio::ip::make_address(bind, ec);
  if (ec) return Status::Error("bad bind address " + bind);
  asio::ip::tcp::endpoint ep(ip, port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(256, ec);
  if (ec) return Status::Error("node link tcp " + bind + ":" + std::to_string(port) + ": " + ec.message());
  Accept();
  return Status::Ok();
}

void LinkAcceptor::Accept() {
  acceptor_.async_accept([this](asio::error_code ec, asio::ip::tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      TuneSocket(socket);
      auto hs = std::make_shared<Handshake>(io_);
      hs->self = self_;
      hs->done = on_link_;
      hs->ch = std::make_shared<LinkConnection>(std::move(socket));
      hs->ArmTimeout(hs);
      hs->ch->Start(
          [hs](pb::LinkFrame& f) {
            if (!hs->hello_seen) {
              if (std::string why = HelloProblem(hs->self, f); !why.empty()) return hs->Fail(why);
              hs->nc = f.hello().nonce();
              hs->peer = {f.hello().node(), f.hello().address()};
              hs->ns = LinkCipher::RandomNonce();
              hs->ch->Send(Hello(hs->self, hs->ns));
              hs->ch->Send(Proof(hs->self, "server", hs->nc, hs->ns));
              hs->hello_seen = true;
              return;
            }
            if (!ProofOk(hs->self, f, "client", hs->nc, hs->ns)) return hs->Fail("peer failed to prove the cluster key");
            hs->Authenticated(false);
          },
          [hs](const std::string& why) { hs->Finish(Status::Error("link handshake: " + why)); });
    }
    Accept();
  });
}

}  // namespace roam
