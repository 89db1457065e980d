// The dashboard's JSON (docs/DASHBOARD.md, "HTTP API"): the state of the
// cluster as one roamd sees it, and the last hour of every node's load.
// Pure: made from the replies roamd's control socket gives.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "control.pb.h"

namespace roam {

// /api/state: nodes (with `blocked` and `draining`), processes, unreachable.
nlohmann::ordered_json StateJson(const pb::NodesReply& nodes, const pb::PsReply& ps, int64_t now_ms);

// /api/progress: {"moving": false}, or the move under way.
nlohmann::ordered_json ProgressJson(const pb::MoveProgress* p);

// The last `capacity` samples of each node's load, one per Add(). A node
// not heard of for `capacity` seconds is forgotten (Add() is called once a second). Thread-safe.
class HistoryRing {
 public:
  explicit HistoryRing(size_t capacity) : capacity_(capacity) {}

  void Add(const pb::NodesReply& nodes, int64_t now_ms);
  // /api/history.
  nlohmann::ordered_json ToJson(int64_t interval_ms) const;

 private:
  struct Sample {
    int64_t t;
    double load, cpu_util;
    uint64_t mem_used, mem_total;
  };
  size_t capacity_;
  mutable std::mutex mu_;
  std::map<std::string, std::deque<Sample>> nodes_;
};

}  // namespace roam
