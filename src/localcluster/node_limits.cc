#include "localcluster/node_limits.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace roam::localcluster {

namespace {

std::vector<std::string> SplitCommas(const std::string& text) {
  std::vector<std::string> out;
  if (text.empty()) return out;
  size_t start = 0;
  for (;;) {
    size_t comma = text.find(',', start);
    out.push_back(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace

Result<double> ParseCpuQuota(const std::string& text) {
  if (text.empty()) return Status::Error("empty CPU quota");
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(text.c_str(), &end);
  if (errno != 0 || end == text.c_str() || *end != '\0' || !std::isfinite(v) || v < 0)
    return Status::Error("CPU quota '" + text + "' is not a non-negative number of cores");
  if (v != 0 && v < 0.01) return Status::Error("CPU quota '" + text + "' is below the minimum of 0.01 core");
  return v;
}

Result<uint64_t> ParseMemSize(const std::string& text) {
  std::string t = text;
  if (!t.empty() && (t.back() == 'B' || t.back() == 'b')) t.pop_back();
  uint64_t mult = 1;
  if (!t.empty()) {
    switch (t.back()) {
      case 'K': case 'k': mult = 1ull << 10; t.pop_back(); break;
      case 'M': case 'm': mult = 1ull << 20; t.pop_back(); break;
      case 'G': case 'g': mult = 1ull << 30; t.pop_back(); break;
      default: break;
    }
  }
  if (t.empty() || t.find_first_not_of("0123456789") != std::string::npos)
    return Status::Error("memory limit '" + text + "' is not a size like 512M, 2G or 1048576");
  errno = 0;
  unsigned long long v = std::strtoull(t.c_str(), nullptr, 10);
  if (errno != 0 || (v != 0 && v > UINT64_MAX / mult)) return Status::Error("memory limit '" + text + "' is too large");
  uint64_t bytes = v * mult;
  if (bytes != 0 && bytes < (4ull << 20)) return Status::Error("memory limit '" + text + "' is below the minimum of 4M");
  return bytes;
}

std::string FormatMemSize(uint64_t bytes) {
  if (bytes != 0) {
    if (bytes % (1ull << 30) == 0) return std::to_string(bytes >> 30) + "G";
    if (bytes % (1ull << 20) == 0) return std::to_string(bytes >> 20) + "M";
    if (bytes % (1ull << 10) == 0) return std::to_string(bytes >> 10) + "K";
  }
  return std::to_string(bytes);
}

Result<std::vector<NodeLimits>> ParseNodeLimits(const std::string& cpu_list, const std::string& mem_list,
                                                int nodes) {
  std::vector<NodeLimits> out(static_cast<size_t>(nodes));
  std::vector<std::string> cpus = SplitCommas(cpu_list);
  std::vector<std::string> mems = SplitCommas(mem_list);
  auto count_ok = [nodes](size_t n) { return n == 0 || n == 1 || n == static_cast<size_t>(nodes); };
  if (!count_ok(cpus.size()))
    return Status::Error("--cpu-quota has " + std::to_string(cpus.size()) + " values for " + std::to_string(nodes) +
                         " nodes (give one per node, or one for all)");
  if (!count_ok(mems.size()))
    return Status::Error("--mem-limit has " + std::to_string(mems.size()) + " values for " + std::to_string(nodes) +
                         " nodes (give one per node, or one for all)");
  for (int i = 0; i < nodes; ++i) {
    if (!cpus.empty()) {
      Result<double> q = ParseCpuQuota(cpus.size() == 1 ? cpus[0] : cpus[i]);
      if (!q.ok()) return q.status();
      out[i].cpu_quota = *q;
    }
    if (!mems.empty()) {
      Result<uint64_t> m = ParseMemSize(mems.size() == 1 ? mems[0] : mems[i]);
      if (!m.ok()) return m.status();
      out[i].mem_limit = *m;
    }
  }
  return out;
}

}  // namespace roam::localcluster
