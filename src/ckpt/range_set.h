// Page ranges and sets of them: which addresses of a process a pre-copy
// has sent, which were written since, which the target still holds right.
// Pure: no I/O.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

namespace roam {

// [start, end), page-aligned addresses in a process.
struct PageRange {
  uint64_t start = 0, end = 0;
  uint64_t pages() const { return (end - start) / 4096; }
  uint64_t bytes() const { return end - start; }
  bool operator==(const PageRange&) const = default;
};

// A set of addresses kept as disjoint, merged ranges.
class RangeSet {
 public:
  RangeSet() = default;
  explicit RangeSet(const std::vector<PageRange>& ranges) {
    for (const PageRange& r : ranges) Add(r);
  }

  void Add(PageRange r);
  void Remove(PageRange r);
  void Add(const RangeSet& other);
  void Remove(const RangeSet& other);
  // Whether every address of `r` is in the set (an empty range is).
  bool Contains(PageRange r) const;
  // Whether some address of `r` is in the set.
  bool Intersects(PageRange r) const;
  // The parts of `r` in the set, in address order.
  std::vector<PageRange> Within(PageRange r) const;
  // The set ∩ `other`.
  RangeSet Intersect(const RangeSet& other) const;

  std::vector<PageRange> ranges() const;
  uint64_t bytes() const;
  bool empty() const { return map_.empty(); }
  bool operator==(const RangeSet&) const = default;

 private:
  std::map<uint64_t, uint64_t> map_;  // start -> end, disjoint, not touching
};

}  // namespace roam
