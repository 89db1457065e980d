// GossipEndpoint: roamd's UDP side. One unicast socket (bound to the
// node's address and gossip port; it also sends the multicast announces so
// answers come back to it) and, if enabled, one socket joined to the
// discovery multicast group. Every datagram goes through Envelope; drops are
// counted by reason. Runs on the daemon's single asio io_context.
#pragma once

#include <asio.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "cluster/envelope.h"
#include "cluster/swim.h"
#include "control.pb.h"

namespace roam {

class GossipEndpoint : public SwimTransport {
 public:
  using Handler = std::function<void(const std::string& from_address, const pb::SwimMessage&)>;

  GossipEndpoint(asio::io_context& io, Envelope envelope);

  // Binds the unicast socket and, unless `multicast` is "off", joins the
  // group on the interface that holds `bind_ip`. REQUIRES: called once.
  Status Open(const std::string& bind_ip, uint16_t port, const std::string& multicast);
  // Starts receiving; every accepted message is passed to `handler`.
  void Start(Handler handler);

  void Send(const std::string& address, const pb::SwimMessage& msg) override;
  void Multicast(const pb::SwimMessage& msg) override;

  const pb::Counters& counters() const { return counters_; }

 private:
  void ReceiveOn(asio::ip::udp::socket& socket, std::array<char, kMaxDatagram>& buf, asio::ip::udp::endpoint& from);
  void Deliver(const char* data, size_t n, const asio::ip::udp::endpoint& from);
  void SendBytes(const std::string& bytes, const asio::ip::udp::endpoint& to);

  Envelope envelope_;
  asio::ip::udp::socket unicast_;
  asio::ip::udp::socket group_;
  std::optional<asio::ip::udp::endpoint> group_endpoint_;
  std::array<char, kMaxDatagram> unicast_buf_{}, group_buf_{};
  asio::ip::udp::endpoint unicast_from_, group_from_;
  Handler handler_;
  pb::Counters counters_;
  int64_t last_drop_log_ms_ = 0;
};

}  // namespace roam
