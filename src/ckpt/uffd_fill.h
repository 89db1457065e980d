// UffdFill: writing a restored process's private anonymous pages with
// UFFDIO_COPY, straight from the restorer's own mapping of the page file.
//
// The other way (memory.cc FillPages: MADV_POPULATE_WRITE over a run, then
// a preadv in the seed) gives every page three passes: the kernel allocates
// it, zeroes it, then the read copies the image over it. UFFDIO_COPY
// allocates each page and copies into it once, under one call per run
// (1 GiB from tmpfs on this VM: 260-300 ms, against 480 ms and more the
// other way; docs/BENCHMARKS.md).
//
// How: a userfaultfd is made in the seed (injected; UFFD_USER_MODE_ONLY, so
// an unprivileged restore may have one) and taken into the restorer
// (pidfd_getfd) with the seed's page file, which the restorer maps. The
// seed's VMAs are registered for missing pages through that fd, which acts
// on the seed's memory wherever it is called from; the seed stays stopped
// meanwhile, so no fault of its own ever waits on it. Everything is
// unregistered before the seed runs again.
//
// Best effort: a mapping it cannot register (MAP_DROPPABLE, a kernel
// without userfaultfd), or a page that is present already (an ioctl says
// EEXIST), is left to the preadv way: Copy() says how much it wrote.
#pragma once

#include <cstdint>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"

namespace roam {

class Tracee;

class UffdFill {
 public:
  // A userfaultfd in the seed `t`, and its page file `pages_fd` (an fd in
  // the seed) mapped here. An error: fill the other way.
  static Result<UffdFill> Open(Tracee& t, int pages_fd);

  UffdFill() = default;
  UffdFill(UffdFill&& o) noexcept;
  UffdFill& operator=(UffdFill&& o) noexcept;
  ~UffdFill();

  // Registers [start, end), one mapping of the seed, for missing pages.
  // False if it cannot be (nothing is copied there then).
  bool Register(uint64_t start, uint64_t end);
  // Copies `len` bytes from the page file at `offset` to `vaddr` in the
  // seed, in a registered mapping; the bytes copied, from the start (fewer
  // than `len`: the rest is the caller's).
  uint64_t Copy(uint64_t vaddr, uint64_t len, uint64_t offset);
  // Unregisters every registered range and lets go of the file and the fd.
  Status Close();

 private:
  UniqueFd uffd_;
  const char* map_ = nullptr;
  uint64_t map_len_ = 0;
  std::vector<std::pair<uint64_t, uint64_t>> registered_;
};

}  // namespace roam
