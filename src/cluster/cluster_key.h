// The cluster key: the shared secret every datagram is authenticated with.
// Stored in a file of 64 hex characters (32 bytes), mode 0600.
#pragma once

#include <array>
#include <string>

#include "common/status.h"

namespace roam {

class ClusterKey {
 public:
  static constexpr size_t kBytes = 32;
  // Reads and checks a key file: exists, owned by the caller's uid or root,
  // not readable by group or others, 64 hex characters (whitespace ignored).
  static Result<ClusterKey> Load(const std::string& path);
  static Result<ClusterKey> FromHex(const std::string& hex);
  // A fresh random key in hex form, for `roam cluster up` and admins.
  static std::string GenerateHex();

  const std::array<unsigned char, kBytes>& bytes() const { return bytes_; }

 private:
  std::array<unsigned char, kBytes> bytes_{};
};

}  // namespace roam
