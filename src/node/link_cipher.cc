#include "node/link_cipher.h"

#include <sodium.h>

#include <cstring>

namespace roam {

namespace {

void CounterNonce(uint64_t n, unsigned char out[crypto_aead_chacha20poly1305_IETF_NPUBBYTES]) {
  std::memset(out, 0, crypto_aead_chacha20poly1305_IETF_NPUBBYTES);
  for (int i = 0; i < 8; ++i) out[i] = static_cast<unsigned char>(n >> (8 * i));
}

}  // namespace

LinkCipher::Key LinkCipher::Derive(const ClusterKey& key, const std::string& label, const std::string& nonce_c,
                                   const std::string& nonce_s) {
  std::string msg = "roam-link|" + label + "|" + nonce_c + nonce_s;
  static_assert(crypto_auth_BYTES == 32 && crypto_auth_KEYBYTES == ClusterKey::kBytes);
  Key out{};
  crypto_auth(out.data(), reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), key.bytes().data());
  return out;
}

std::string LinkCipher::RandomNonce() {
  std::string n(kNonceBytes, '\0');
  randombytes_buf(n.data(), n.size());
  return n;
}

bool LinkCipher::EqualMac(const std::string& a, const Key& b) {
  return a.size() == b.size() && sodium_memcmp(a.data(), b.data(), b.size()) == 0;
}

std::array<unsigned char, LinkCipher::kTagBytes> LinkCipher::Seal(const std::string& frame) {
  static_assert(crypto_aead_chacha20poly1305_IETF_ABYTES == kTagBytes);
  unsigned char nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];
  CounterNonce(sent_++, nonce);
  std::array<unsigned char, kTagBytes> tag{};
  unsigned long long tag_len = 0;
  unsigned char none[1] = {0};  // no ciphertext: the frame is associated data only
  crypto_aead_chacha20poly1305_ietf_encrypt_detached(none, tag.data(), &tag_len, none, 0,
                                                     reinterpret_cast<const unsigned char*>(frame.data()),
                                                     frame.size(), nullptr, nonce, send_key_.data());
  return tag;
}

bool LinkCipher::Open(const std::string& frame, const unsigned char* tag) {
  unsigned char nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];
  CounterNonce(received_, nonce);
  unsigned char none[1] = {0};  // no ciphertext: the frame is associated data only
  int rc = crypto_aead_chacha20poly1305_ietf_decrypt_detached(
      none, nullptr, none, 0, tag, reinterpret_cast<const unsigned char*>(frame.data()), frame.size(),
      nonce, recv_key_.data());
  if (rc != 0) return false;
  ++received_;
  return true;
}

}  // namespace roam
