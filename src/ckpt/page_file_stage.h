// PageFileStage: pre-copied pages kept in a page file of an image directory,
// for a target that restores from files rather than into a staged process.
//
// A process coming home is rebuilt in place by its deputy (docs/HOME.md),
// which stays the deputy until its image is whole, so no process of its own
// can take the pages as they come (PageStage, page_stage.h, is for guests).
// The home writes them here instead while the process still runs away, and
// once the image is whole Fold() makes them part of it: the root's record
// then takes its kept pages from this file and its saved pages, copied in
// after them, too. The frozen window then holds the last round only, not
// every page of the process.
//
// Not thread-safe; one per move.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "common/status.h"
#include "common/unique_fd.h"

namespace roam {

class PageFileStage {
 public:
  static constexpr char kFileName[] = "pages-staged.img";

  // Creates `dir`/kFileName (the directory must exist).
  static Result<std::unique_ptr<PageFileStage>> Create(const std::string& dir);

  // Writes `len` bytes (whole pages) that the process holds at `vaddr`. A
  // page written again replaces its older copy.
  Status Write(uint64_t vaddr, const void* data, size_t len);

  // REQUIRES: the image in the directory is whole (its inventory written).
  // Rewrites the record of process `pid` so that its kept pages and its
  // saved pages both come from the staged file, which becomes its page file
  // (the old one is removed); the inventory's list of files follows. A kept
  // page that was never staged is an error, and leaves the image as it was.
  Status Fold(pid_t pid);

  uint64_t bytes() const { return end_ - first_; }

 private:
  PageFileStage(std::string dir, UniqueFd fd);

  std::string dir_;
  UniqueFd fd_;
  const uint64_t first_;  // where the payload starts (after the header)
  uint64_t end_;
  std::unordered_map<uint64_t, uint64_t> offset_of_;  // page address -> offset in the file
};

}  // namespace roam
