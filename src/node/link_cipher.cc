#include "node/link_cipher.h"

#include <openssl/evp.h>
#include <sodium.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace roam {

namespace {

constexpr int kNonceLen = 12;  // the IETF construction's

void CounterNonce(uint64_t n, unsigned char out[kNonceLen]) {
  std::memset(out, 0, kNonceLen);
  for (int i = 0; i < 8; ++i) out[i] = static_cast<unsigned char>(n >> (8 * i));
}

// Feeds `n` bytes of associated data (EVP takes an int length at a time).
bool Aad(EVP_CIPHER_CTX* c, const void* data, size_t n, bool seal) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  do {
    const int k = static_cast<int>(std::min<size_t>(n, 1u << 30));
    int len = 0;
    if ((seal ? EVP_EncryptUpdate(c, nullptr, &len, p, k) : EVP_DecryptUpdate(c, nullptr, &len, p, k)) != 1) {
      return false;
    }
    p += k;
    n -= k;
  } while (n > 0);
  return true;
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

LinkCipher::LinkCipher(const Key& send_key, const Key& recv_key)
    : seal_(EVP_CIPHER_CTX_new()), open_(EVP_CIPHER_CTX_new()) {
  // Failing here means the process is out of memory or its libcrypto lacks
  // ChaCha20-Poly1305; every Seal and Open would fail: nothing can go on.
  if (!seal_ || !open_ || EVP_EncryptInit_ex2(seal_.get(), EVP_chacha20_poly1305(), send_key.data(), nullptr, nullptr) != 1 ||
      EVP_DecryptInit_ex2(open_.get(), EVP_chacha20_poly1305(), recv_key.data(), nullptr, nullptr) != 1) {
    std::abort();
  }
}

LinkCipher::~LinkCipher() = default;

void LinkCipher::CtxFree::operator()(evp_cipher_ctx_st* c) const { EVP_CIPHER_CTX_free(c); }

std::array<unsigned char, LinkCipher::kTagBytes> LinkCipher::Seal(const void* frame, size_t n) {
  unsigned char nonce[kNonceLen];
  CounterNonce(sent_++, nonce);
  std::array<unsigned char, kTagBytes> tag{};
  EVP_CIPHER_CTX* c = seal_.get();
  int len = 0;
  unsigned char none[1];
  // The frame is associated data only: authenticated, sent in clear. A
  // failure leaves a zero tag, which the peer refuses.
  if (EVP_EncryptInit_ex2(c, nullptr, nullptr, nonce, nullptr) != 1 || !Aad(c, frame, n, true) ||
      EVP_EncryptFinal_ex(c, none, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, kTagBytes, tag.data()) != 1) {
    tag.fill(0);
  }
  return tag;
}

bool LinkCipher::Open(const void* frame, size_t n, const unsigned char* tag) {
  unsigned char nonce[kNonceLen];
  CounterNonce(received_, nonce);
  EVP_CIPHER_CTX* c = open_.get();
  int len = 0;
  unsigned char none[1];
  unsigned char want[kTagBytes];
  std::memcpy(want, tag, kTagBytes);
  if (EVP_DecryptInit_ex2(c, nullptr, nullptr, nonce, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, kTagBytes, want) != 1 || !Aad(c, frame, n, false) ||
      EVP_DecryptFinal_ex(c, none, &len) != 1) {
    return false;
  }
  ++received_;
  return true;
}

}  // namespace roam
