// A whole checkpoint image in memory, and the checks that make it safe to
// act on: LoadImage verifies every file (header, size, checksum) before
// anything is parsed, and ValidateImage checks that the records agree with
// each other (ranges, references, sizes) so that the restore never meets a
// surprise halfway through creating processes.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "image.pb.h"

namespace roam {

struct Image {
  std::string dir;
  pb::Inventory inventory;
  pb::FileTable files;
  std::vector<pb::ProcessImage> procs;  // in inventory order: parents first
  std::map<std::string, uint64_t> payload_sizes;  // payload file name -> bytes after the header

  const pb::ProcessImage* Find(int pid) const;
};

inline std::string CoreFileName(int pid) { return "core-" + std::to_string(pid) + ".img"; }
inline constexpr const char kInventoryFile[] = "inventory.img";
inline constexpr const char kFileTableFile[] = "files.img";

// Reads and verifies the image in `dir`. With `verify_payloads` false the
// page files' checksums are not recomputed (for `roam image show`).
Result<Image> LoadImage(const std::string& dir, bool verify_payloads = true);

// Recomputes the checksum of every payload file (pages, contents) the
// inventory lists, against the inventory's. LoadImage does it first when
// asked; a restore runs it beside its work (restore.h).
Status VerifyPayloads(const std::string& dir, const pb::Inventory& inventory);

// Cross-checks the records of `image`. Pure.
Status ValidateImage(const Image& image);

// Files roam carries with their process instead of asking the target to
// have them: private to it, on the node's own memory file systems,
// meaningless elsewhere. Two kinds:
//  - a JVM's perf-data file, /tmp/hsperfdata_USER/PID, which the JVM maps
//    shared for jstat and removes at exit (Java ignores TMPDIR, so it is
//    never on the cluster's shared directory);
//  - a POSIX shared memory object or named semaphore, /dev/shm/NAME
//    (shm_open, sem_open, Python's multiprocessing.shared_memory): every
//    node has a /dev/shm of its own. The dump refuses one that a process
//    outside the tree holds (CheckCarriedNotShared, files.h): a move would
//    split one object into two.
// The dump saves its contents (FileDesc.carried); the restore writes them
// back at the path (PlaceCarried, files.h); a move's source removes its
// copy once the target holds the process. Pure.
bool CarriedWithProcess(const std::string& path);
// The second kind above: /dev/shm/NAME, NAME one plain component. Pure.
bool IsPosixSharedMemory(const std::string& path);

}  // namespace roam
