// LinkCipher: the per-connection keys of a node link (proto/link.proto) and
// the authentication tag of every frame after the handshake.
//
// Keys come from the cluster key and both sides' nonces; each direction has
// its own key and frame counter (the AEAD nonce), so a frame replayed,
// reordered, dropped or moved to another connection fails Open. Frames are
// authenticated, not encrypted: stdio crosses the lab's network in clear,
// as it did with openMosix (docs/HOME.md says why). Not thread-safe.
//
// The tag is IETF ChaCha20-Poly1305 with the frame as associated data and
// no ciphertext. Computed with OpenSSL, whose Poly1305 uses AVX-512 where
// the CPU has it: 10 GB/s here against libsodium's 3.3 GB/s, and every
// byte of a move's pages is tagged once on each side (docs/BENCHMARKS.md).
// The tags are the same either way, so nodes of both builds interoperate.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "cluster/cluster_key.h"

struct evp_cipher_ctx_st;

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

  LinkCipher(const Key& send_key, const Key& recv_key);
  ~LinkCipher();
  LinkCipher(const LinkCipher&) = delete;
  LinkCipher& operator=(const LinkCipher&) = delete;

  // The tag of the next frame sent.
  std::array<unsigned char, kTagBytes> Seal(const void* frame, size_t n);
  std::array<unsigned char, kTagBytes> Seal(const std::string& frame) { return Seal(frame.data(), frame.size()); }
  // Checks the next frame received; false ends the connection.
  bool Open(const void* frame, size_t n, const unsigned char* tag);
  bool Open(const std::string& frame, const unsigned char* tag) { return Open(frame.data(), frame.size(), tag); }

 private:
  struct CtxFree {
    void operator()(evp_cipher_ctx_st* c) const;
  };
  // Keyed once; each frame sets its nonce (the frame counter).
  std::unique_ptr<evp_cipher_ctx_st, CtxFree> seal_, open_;
  uint64_t sent_ = 0, received_ = 0;
};

}  // namespace roam
