// Envelope: turns SwimMessages into authenticated datagrams and back.
//
// Seal: Sealed{version, cluster, sender, seq, body} serialized, then its MAC
// (crypto_auth, HMAC-SHA-512-256, with the cluster key). Open checks, in
// this order, and stops at the first failure: the datagram parses, the MAC,
// the version, the cluster name, the sender's replay window, and that the
// body passes ValidateSwimMessage. Each failure kind is counted separately.
//
// Insecure mode (no key; loopback only, enforced by the daemon) still checks
// all of that but the MAC. Not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "cluster/cluster_key.h"
#include "gossip.pb.h"

namespace roam {

constexpr uint32_t kGossipVersion = 1;
constexpr size_t kMaxDatagram = 65507;

// Per-sender sliding window over sequence numbers (64 wide, like IPsec):
// each number is accepted once; numbers older than the window are refused.
class ReplayWindow {
 public:
  bool Accept(uint64_t seq);

 private:
  uint64_t highest_ = 0;
  uint64_t seen_ = 0;  // bit i: highest_ - i was accepted
};

enum class DropReason { kMalformed, kBadMac, kBadVersion, kWrongCluster, kReplay, kInvalid };
const char* DropReasonName(DropReason r);

class Envelope {
 public:
  // `key` empty means insecure mode. `first_seq` should be the wall clock in
  // microseconds at start, so that a restarted sender is not taken for a replay.
  Envelope(std::string cluster, std::string self_name, std::optional<ClusterKey> key, uint64_t first_seq);

  std::string Seal(const pb::SwimMessage& body);

  struct Opened {
    std::string sender;
    pb::SwimMessage body;
  };
  // Fills *out and returns nullopt when the datagram is accepted; otherwise
  // the reason it was dropped (out is then unspecified).
  std::optional<DropReason> Open(const std::string& datagram, Opened* out);

 private:
  std::string cluster_;
  std::string self_;
  std::optional<ClusterKey> key_;
  uint64_t next_seq_;
  std::map<std::string, ReplayWindow> windows_;
};

}  // namespace roam
