// NodeLimits: the CPU quota and memory limit of one node, and the parsers for
// the `--cpu-quota Q1,Q2,..` and `--mem-limit M1,M2,..` lists of `cluster up`.
//
// A CPU quota is a number of cores (0.5 = half a core, 2 = two cores); a
// memory limit is a byte count written with an optional K, M or G suffix
// (powers of 1024). 0 means "no limit" for both. A list holds either one value
// per node or a single value applied to every node; an empty list means no
// limits. Pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace roam::localcluster {

struct NodeLimits {
  double cpu_quota = 0;    // cores; 0 = unlimited
  uint64_t mem_limit = 0;  // bytes; 0 = unlimited
};

// "0.5" -> 0.5. Refuses negatives, junk, and quotas under 0.01 core.
Result<double> ParseCpuQuota(const std::string& text);
// "512M" -> 536870912. Accepts K/M/G (either case), optional trailing B.
Result<uint64_t> ParseMemSize(const std::string& text);
// 536870912 -> "512M"; exact multiples only, else plain bytes.
std::string FormatMemSize(uint64_t bytes);

// Combines the two comma-separated lists (each possibly empty) into one
// NodeLimits per node. REQUIRES: nodes >= 1.
Result<std::vector<NodeLimits>> ParseNodeLimits(const std::string& cpu_list, const std::string& mem_list,
                                                int nodes);

}  // namespace roam::localcluster
