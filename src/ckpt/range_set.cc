#include "ckpt/range_set.h"

#include <algorithm>

namespace roam {

void RangeSet::Add(PageRange r) {
  if (r.start >= r.end) return;
  // Swallow every range that overlaps or touches [start, end).
  auto it = map_.upper_bound(r.start);
  if (it != map_.begin() && std::prev(it)->second >= r.start) --it;
  while (it != map_.end() && it->first <= r.end) {
    r.start = std::min(r.start, it->first);
    r.end = std::max(r.end, it->second);
    it = map_.erase(it);
  }
  map_.emplace(r.start, r.end);
}

void RangeSet::Remove(PageRange r) {
  if (r.start >= r.end) return;
  auto it = map_.upper_bound(r.start);
  if (it != map_.begin() && std::prev(it)->second > r.start) --it;
  while (it != map_.end() && it->first < r.end) {
    uint64_t s = it->first, e = it->second;
    it = map_.erase(it);
    if (s < r.start) map_.emplace(s, r.start);
    if (e > r.end) it = map_.emplace(r.end, e).first;
  }
}

void RangeSet::Add(const RangeSet& other) {
  for (const auto& [s, e] : other.map_) Add({s, e});
}

void RangeSet::Remove(const RangeSet& other) {
  for (const auto& [s, e] : other.map_) Remove({s, e});
}

bool RangeSet::Contains(PageRange r) const {
  if (r.start >= r.end) return true;
  auto it = map_.upper_bound(r.start);
  if (it == map_.begin()) return false;
  --it;
  return it->first <= r.start && it->second >= r.end;
}

bool RangeSet::Intersects(PageRange r) const { return !Within(r).empty(); }

std::vector<PageRange> RangeSet::Within(PageRange r) const {
  std::vector<PageRange> out;
  if (r.start >= r.end) return out;
  auto it = map_.upper_bound(r.start);
  if (it != map_.begin() && std::prev(it)->second > r.start) --it;
  for (; it != map_.end() && it->first < r.end; ++it) {
    out.push_back({std::max(r.start, it->first), std::min(r.end, it->second)});
  }
  return out;
}

RangeSet RangeSet::Intersect(const RangeSet& other) const {
  RangeSet out;
  for (const auto& [s, e] : map_) {
    for (const PageRange& p : other.Within({s, e})) out.map_.emplace(p.start, p.end);
  }
  return out;
}

std::vector<PageRange> RangeSet::ranges() const {
  std::vector<PageRange> out;
  out.reserve(map_.size());
  for (const auto& [s, e] : map_) out.push_back({s, e});
  return out;
}

uint64_t RangeSet::bytes() const {
  uint64_t n = 0;
  for (const auto& [s, e] : map_) n += e - s;
  return n;
}

}  // namespace roam
