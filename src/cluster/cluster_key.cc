#include "cluster/cluster_key.h"

#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file_util.h"

namespace roam {

Result<ClusterKey> ClusterKey::FromHex(const std::string& text) {
  std::string hex;
  for (char c : text) {
    if (c != ' ' && c != '\n' && c != '\t' && c != '\r') hex.push_back(c);
  }
  ClusterKey key;
  size_t len = 0;
  if (hex.size() != 2 * kBytes ||
      sodium_hex2bin(key.bytes_.data(), kBytes, hex.data(), hex.size(), nullptr, &len, nullptr) != 0 ||
      len != kBytes) {
    return Status::Error("cluster key must be " + std::to_string(2 * kBytes) + " hex characters");
  }
  return key;
}

Result<ClusterKey> ClusterKey::Load(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return Status::Errno("cluster key " + path);
  if (st.st_uid != 0 && st.st_uid != ::geteuid()) {
    return Status::Error("cluster key " + path + ": owned by uid " + std::to_string(st.st_uid) +
                         ", not by root or the caller");
  }
  if ((st.st_mode & 077) != 0) {
    return Status::Error("cluster key " + path + ": readable by group or others (chmod 600 it)");
  }
  Result<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  Result<ClusterKey> key = FromHex(*text);
  if (!key.ok()) return Status::Error(path + ": " + key.status().message());
  return key;
}

std::string ClusterKey::GenerateHex() {
  std::array<unsigned char, kBytes> raw{};
  randombytes_buf(raw.data(), raw.size());
  char hex[2 * kBytes + 1];
  sodium_bin2hex(hex, sizeof hex, raw.data(), raw.size());
  return std::string(hex) + "\n";
}

}  // namespace roam
