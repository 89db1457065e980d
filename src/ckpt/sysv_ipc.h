// System V IPC: the shared memory segments, semaphore sets and message
// queues a tree uses, carried with it (docs/CHECKPOINT.md, "System V IPC").
//
// Which objects: the segments the tree has attached (its VMA_SYSV_SHM
// mappings) or created or last attached (cpid, lpid); the semaphore sets
// one of its processes last operated on (GETPID), holds an adjustment on
// or waits on; the queues one of its processes last sent to or received
// from (lspid, lrpid) or waits on. An object the tree made but has not
// used yet is not seen (the kernel keeps no creator for sets and queues).
// A segment attached by a process outside the tree is refused.
//
// Semaphore adjustments (SEM_UNDO) are nowhere to be read: the kernel only
// applies them, when their last holder exits or unshares CLONE_SYSVSEM. So
// the dump takes them out: each process, frozen, unshares CLONE_SYSVSEM
// (injected, in every thread), and what that did to the sets' values is
// its adjustments. Released (`--leave-running`, a refused move), it takes
// them back by an injected semop(SEM_UNDO); restored, the same, before its
// threads are made so that they share them again.
//
// Ids: programs keep the ids shmget/semget/msgget gave them, so an object
// is made again with its id (the ns's *_next_id, which only root may
// write) and key, unless the object with that id and key is still there
// (a restore on the host it was dumped on): then it is used as it is. A
// removed segment (alive while attached) is made again under any id and
// removed again once every process has attached it.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <set>
#include <vector>

#include "ckpt/files.h"
#include "ckpt/tracee.h"
#include "common/status.h"
#include "image.pb.h"

namespace roam {

// ---- dump side --------------------------------------------------------------------

// The calling thread in the IPC namespace of a tree for as long as it
// lives (System V objects are seen only from inside theirs), then back in
// its own. Nothing to do when they are the same.
class InIpcNamespace {
 public:
  InIpcNamespace() = default;
  ~InIpcNamespace();
  InIpcNamespace(const InIpcNamespace&) = delete;
  InIpcNamespace& operator=(const InIpcNamespace&) = delete;
  // `ns_fd`: an open /proc/PID/ns/ipc (not taken).
  Status Enter(int ns_fd);

 private:
  int own_ = -1;
};

class SysvDump {
 public:
  // Reads every semaphore set's values, before any process is drained.
  Status Begin();
  // Takes `t`'s adjustments out (see above) into `out`. `threads`: its
  // other threads, held. REQUIRES: Begin(); the process frozen, signals
  // blocked, syscall ip set (as for any injection).
  Status Drain(Tracee& t, const std::vector<std::unique_ptr<Tracee>>& threads, std::vector<pb::SemUndo>* out);
  // Records the objects the tree `pids` uses into files.table() (segment
  // contents into sysvshm-ID.img). `procs`: the tree's images, memory
  // dumped (their VMA_SYSV_SHM mappings). REQUIRES: the tree is still
  // frozen.
  Status Record(const std::set<pid_t>& pids, const std::vector<const pb::ProcessImage*>& procs,
                FileTableBuilder& files);

 private:
  std::map<int, std::vector<int>> values_;  // semid -> values now
  std::map<int, std::vector<int>> before_;  // semid -> values at Begin()
  std::set<int> adjusted_;                  // semids some process held adjustments on
};

// Gives `t` back adjustments a Drain took, by an injected semop(SEM_UNDO |
// IPC_NOWAIT) per set, through `scratch` (bytes of the process's memory).
// A set that is gone, or a value that cannot be taken back now, is an error
// that names them (the rest is still given).
Status GiveSemUndo(Tracee& t, uint64_t scratch, size_t scratch_size, const std::vector<pb::SemUndo>& undo,
                   const std::map<int, int>& ids = {});

// Removes the objects of `table` from this IPC namespace (a tree that
// moved took them along). A segment still attached here stays until it is
// detached.
void RemoveSysvObjects(const pb::FileTable& table);

// ---- restore side -----------------------------------------------------------------

class SysvObjects {
 public:
  SysvObjects() = default;
  ~SysvObjects();  // removes what Make() created, unless Finish() ran
  SysvObjects(const SysvObjects&) = delete;
  SysvObjects& operator=(const SysvObjects&) = delete;

  // Makes (or finds) every object of `table`: a segment with its
  // contents from `image_dir`; a set or a queue empty, owned by its owner
  // with mode 0600 until Finish(); a set made again is to start with
  // `procs`' adjustments added.
  Status Make(const pb::FileTable& table, const std::vector<pb::ProcessImage>& procs, const std::string& image_dir);
  // The values of the sets made, and the messages of the queues made, put
  // in by `t` (the tree's root, being rebuilt), so that the kernel names a
  // process of the tree as their last user, as the dump found them.
  // `scratch`: bytes of its memory.
  Status FillFrom(Tracee& t, uint64_t scratch, size_t scratch_size);
  // Once every process has attached its segments: the modes of sets and
  // queues made; removed segments removed again. The objects are the
  // tree's from here.
  Status Finish();
  // The id of the image's segment `shmid` here.
  int ShmId(int shmid) const;
  // image id -> id here, for semaphore sets.
  const std::map<int, int>& sem_ids() const { return sem_ids_; }

 private:
  struct Made {
    int kind;  // 0 shm, 1 sem, 2 msg
    int id;
    pb::SysvPerm perm;
  };
  struct Fill {
    int kind;           // 1: SETALL, 2: msgsnd
    int id;
    std::string bytes;  // the values, or the message (type first)
  };
  std::map<int, int> shm_ids_, sem_ids_;
  std::vector<int> to_remove_;  // segments removed in the image
  std::vector<Made> made_;
  std::vector<Fill> fills_;
  bool finished_ = false;
};

}  // namespace roam
