// The image directory of a move, on the node's private tmpfs (/run/roam):
// the source dumps into one, the target receives into one, and both remove
// it as soon as the move no longer needs it.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace roam {

// The files of an image (names only), inventory last.
Result<std::vector<std::string>> ListImageFiles(const std::string& dir);
// Whether `name` may be written by a peer into an image directory: a plain
// file name ending in ".img", no path, no dot-dot.
bool IsImageFileName(const std::string& name);
// Removes the image files of `dir`, then `dir`. Quiet if it is missing.
void RemoveImageDir(const std::string& dir);

}  // namespace roam
