#include "web/dashboard_token.h"

#include <sodium.h>

#include <array>

#include "node/roamd.h"

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

std::string DashboardUrl(const std::string& listen, const std::string& bind) {
  std::string host = listen.substr(0, listen.rfind(':'));
  if (host == "0.0.0.0") host = bind != "0.0.0.0" ? bind : FirstIpv4();
  return "http://" + host + listen.substr(listen.rfind(':')) + "/";
}

bool TokenMatches(std::string_view given, std::string_view token) {
  if (token.empty() || given.size() != token.size()) return false;
  return sodium_memcmp(given.data(), token.data(), token.size()) == 0;
}

}  // namespace roam
