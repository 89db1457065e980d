// Small, checked file helpers. All return errors as values naming the path.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace roam {

// Whole file as bytes (works for /proc files, whose size is 0 in stat).
Result<std::string> ReadFile(const std::string& path);
// Writes all of `data` to `fd`, going on after short writes and EINTR; an
// error names `what` ("write PATH").
Status WriteAll(int fd, std::string_view data, const std::string& what = "write");
// Writes atomically: a temporary file in the same directory, fsync, rename.
Status WriteFileAtomic(const std::string& path, const std::string& data, int mode = 0644);
// Writes in place, for /proc, /sys and cgroup files (no temporary).
Status WriteFileInPlace(const std::string& path, const std::string& data);
// mkdir -p; existing directories are fine.
Status MakeDirs(const std::string& path, int mode = 0755);
// Whether a /proc link (fd, cwd, map_files, a maps line's path) names a
// file since removed: the kernel appends " (deleted)".
bool LinkDeleted(const std::string& link);

}  // namespace roam
