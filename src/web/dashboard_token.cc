#include "web/dashboard_token.h"

#include <sodium.h>

#include <array>

namespace roam {

std::string DashboardToken(const std::optional<ClusterKey>& key, const std::string& cluster) {
  if (sodium_init() < 0) return {};
  std::array<unsigned char, 16> out{};
  if (key) {
    const std::string label = "roam dashboard token v1\n" + cluster;
    crypto_generichash(out.data(), out.size(), reinterpret_cast<const unsigned char*>(label.data()), label.size(),
                       key->bytes().data(), key->bytes().size());
  } else {
    randombytes_buf(out.data(), out.size());
  }
  std::array<char, 2 * 16 + 1> hex{};
  sodium_bin2hex(hex.data(), hex.size(), out.data(), out.size());
  return std::string(hex.data());
}

bool TokenMatches(std::string_view given, std::string_view token) {
  if (token.empty() || given.size() != token.size()) return false;
  return sodium_memcmp(given.data(), token.data(), token.size()) == 0;
}

}  // namespace roam
