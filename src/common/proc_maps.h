// /proc/PID/maps and /proc/PID/smaps: the memory areas (VMAs) of a process,
// as the checkpoint engine dumps them and the test runner compares them.
// Pure functions of the text; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace roam {

struct VmaInfo {
  uint64_t start = 0, end = 0;  // [start, end)
  bool read = false, write = false, exec = false;
  bool shared = false;  // 's' in the permissions, else 'p' (private)
  uint64_t offset = 0;  // into the file, in bytes
  uint32_t dev_major = 0, dev_minor = 0;
  uint64_t inode = 0;
  // "" for anonymous memory; "[heap]", "[stack]", "[vdso]", "[vvar]",
  // "[vvar_vclock]", "[vsyscall]", "[anon:NAME]"...; or an absolute file
  // path with any " (deleted)" suffix removed. Shared anonymous memory is
  // "/dev/zero" with deleted set. A newline in a path stays as the kernel
  // writes it, "\012".
  std::string path;
  bool deleted = false;  // the path ended in " (deleted)"
  // From smaps only; empty and zero when parsed from maps.
  std::vector<std::string> vm_flags;  // two-letter VmFlags codes: "rd", "gd", ...
  uint64_t rss_kb = 0, anonymous_kb = 0, swap_kb = 0;

  bool HasFlag(std::string_view code) const;
};

// Parses the text of /proc/PID/maps, one VMA a line, in the kernel's order.
// Empty text (a zombie's maps) gives no VMAs. An error names the line
// number (from 1) and what is wrong with it.
Result<std::vector<VmaInfo>> ParseMaps(const std::string& text);

// Parses the text of /proc/PID/smaps: a maps line for each VMA followed by
// "Key: value" lines, of which Rss, Anonymous, Swap (in kB) and VmFlags are
// kept and the rest checked only for their "Key:" shape. Errors as above.
Result<std::vector<VmaInfo>> ParseSmaps(const std::string& text);

}  // namespace roam
