// Number parsing shared by the /proc parsers (proc_*.cc): strict, whole
// strings only, never throws.
#pragma once

#include <charconv>
#include <string_view>

namespace roam {

// The whole of `s` as a number in `base`, or false.
template <typename T>
bool ParseNumber(std::string_view s, T* out, int base = 10) {
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out, base);
  return ec == std::errc() && end == s.data() + s.size();
}

}  // namespace roam
