// LinkCipher: the per-connection keys of a node link (proto/link.proto) and
// the authentication tag of every frame after the handshake.
//
// Keys come from the cluster key and both sides' nonces; each direction has
// its own key and frame counter (the AEAD nonce), so a frame replayed,
// reordered, dropped or moved to another connection fails Open. Frames are
// authenticated, not encrypted: stdio crosses the lab's network in clear,
// as it did with openMosix (docs/HOME.md says why). Not thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "cluster/cluster_key.h"

namespace roam {

class LinkCipher {
 public:
  static constexpr size_t kTagBytes = 16;
  static constexpr size_t kNonceBytes = 32;
  using Key = std::array<unsigned char, 32>;

  // HMAC(cluster key, label | nonce_c | nonce_s): proofs and frame keys.
  static Key Derive(const ClusterKey& key, const std::string& label, const std::string& nonce_c,
                    const std::string& nonce_s);
  static std::string RandomNonce();
  static bool EqualMac(const std::string& a, const Key& b);

  LinkCipher(const Key& send_key, const Key& recv_key) : send_key_(send_key), recv_key_(recv_key) {}

  // The tag of the next frame sent.
  std::array<unsigned char, kTagBytes> Seal(const std::string& frame);
  // Checks the next frame received; false ends the connection.
  bool Open(const std::string& frame, const unsigned char* tag);

 private:
  Key send_key_, recv_key_;
  uint64_t sent_ = 0, received_ = 0;
};

}  // namespace roam
