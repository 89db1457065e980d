#include "node/gossip_endpoint.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "node/roamd_config.h"

namespace roam {

using asio::ip::udp;

GossipEndpoint::GossipEndpoint(asio::io_context& io, Envelope envelope)
    : envelope_(std::move(envelope)), unicast_(io), group_(io) {}

Status GossipEndpoint::Open(const std::string& bind_ip, uint16_t port, const std::string& multicast) {
  asio::error_code ec;
  asio::ip::address_v4 bind_addr = asio::ip::make_address_v4(bind_ip, ec);
  if (ec) return Status::Error("bad bind address " + bind_ip);
  unicast_.open(udp::v4(), ec);
  if (!ec) unicast_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) unicast_.bind(udp::endpoint(bind_addr, port), ec);
  if (ec) return Status::Error("bind gossip socket " + bind_ip + ":" + std::to_string(port) + ": " + ec.message());
  if (multicast == "off") return Status::Ok();

  std::string group_ip;
  uint16_t group_port = 0;
  if (!SplitHostPort(multicast, &group_ip, &group_port)) return Status::Error("bad multicast group " + multicast);
  asio::ip::address_v4 group_addr = asio::ip::make_address_v4(group_ip, ec);
  if (ec || !group_addr.is_multicast()) return Status::Error("not a multicast address: " + group_ip);
  group_.open(udp::v4(), ec);
  if (!ec) group_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) group_.bind(udp::endpoint(group_addr, group_port), ec);
  if (ec) return Status::Error("bind multicast socket " + multicast + ": " + ec.message());
  if (bind_addr.is_unspecified()) {
    group_.set_option(asio::ip::multicast::join_group(group_addr), ec);
  } else {
    group_.set_option(asio::ip::multicast::join_group(group_addr, bind_addr), ec);
    if (!ec) unicast_.set_option(asio::ip::multicast::outbound_interface(bind_addr), ec);
  }
  if (ec) return Status::Error("join multicast group " + group_ip + ": " + ec.message());
  unicast_.set_option(asio::ip::multicast::hops(1), ec);
  unicast_.set_option(asio::ip::multicast::enable_loopback(false), ec);
  group_endpoint_ = udp::endpoint(group_addr, group_port);
  return Status::Ok();
}

void GossipEndpoint::Start(Handler handler) {
  handler_ = std::move(handler);
  ReceiveOn(unicast_, unicast_buf_, unicast_from_);
  if (group_endpoint_) ReceiveOn(group_, group_buf_, group_from_);
}

void GossipEndpoint::ReceiveOn(udp::socket& socket, std::array<char, kMaxDatagram>& buf, udp::endpoint& from) {
  socket.async_receive_from(asio::buffer(buf), from, [this, &socket, &buf, &from](asio::error_code ec, size_t n) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) Deliver(buf.data(), n, from);
    ReceiveOn(socket, buf, from);
  });
}

void GossipEndpoint::Deliver(const char* data, size_t n, const udp::endpoint& from) {
  counters_.set_datagrams_received(counters_.datagrams_received() + 1);
  counters_.set_bytes_received(counters_.bytes_received() + n);
  Envelope::Opened opened;
  std::optional<DropReason> drop = envelope_.Open(std::string(data, n), &opened);
  if (drop) {
    switch (*drop) {
      case DropReason::kMalformed: counters_.set_dropped_malformed(counters_.dropped_malformed() + 1); break;
      case DropReason::kBadMac: counters_.set_dropped_bad_mac(counters_.dropped_bad_mac() + 1); break;
      case DropReason::kBadVersion: counters_.set_dropped_bad_version(counters_.dropped_bad_version() + 1); break;
      case DropReason::kWrongCluster:
        counters_.set_dropped_wrong_cluster(counters_.dropped_wrong_cluster() + 1);
        break;
      case DropReason::kReplay: counters_.set_dropped_replay(counters_.dropped_replay() + 1); break;
      case DropReason::kInvalid: counters_.set_dropped_invalid(counters_.dropped_invalid() + 1); break;
    }
    // At most one log line per second, whatever arrives.
    int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now().time_since_epoch()).count();
    if (now - last_drop_log_ms_ >= 1000) {
      last_drop_log_ms_ = now;
      spdlog::warn("dropped a datagram from {}: {}", from.address().to_string(), DropReasonName(*drop));
    }
    return;
  }
  // Answers go to the sender's gossip socket, which is where it sent from.
  handler_(from.address().to_string() + ":" + std::to_string(from.port()), opened.body);
}

void GossipEndpoint::SendBytes(const std::string& bytes, const udp::endpoint& to) {
  asio::error_code ec;
  unicast_.send_to(asio::buffer(bytes), to, 0, ec);  // UDP: never blocks for long
  if (ec) return;  // unreachable peers are the failure detector's business
  counters_.set_datagrams_sent(counters_.datagrams_sent() + 1);
  counters_.set_bytes_sent(counters_.bytes_sent() + bytes.size());
}

void GossipEndpoint::Send(const std::string& address, const pb::SwimMessage& msg) {
  std::string ip;
  uint16_t port = 0;
  if (!SplitHostPort(address, &ip, &port)) return;
  asio::error_code ec;
  auto addr = asio::ip::make_address_v4(ip, ec);
  if (ec) return;
  SendBytes(envelope_.Seal(msg), udp::endpoint(addr, port));
}

void GossipEndpoint::Multicast(const pb::SwimMessage& msg) {
  if (group_endpoint_) SendBytes(envelope_.Seal(msg), *group_endpoint_);
}

}  // namespace roam
