// The engine steps every move source takes, and a target's last, run on
// the EngineWorker: the frozen (or restored) tree lives in a holder that
// only the engine thread touches (it is created, used and dropped in jobs,
// as ptrace requires).
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "ckpt/checkpoint.h"
#include "ckpt/image_sink.h"
#include "node/engine_worker.h"

namespace roam {

class FrozenTree;
class PreCopy;
class RestoredTree;
using FrozenHolder = std::shared_ptr<std::unique_ptr<FrozenTree>>;
using RestoredHolder = std::shared_ptr<std::unique_ptr<RestoredTree>>;
using PreCopyHolder = std::shared_ptr<std::unique_ptr<PreCopy>>;

FrozenHolder NewFrozenHolder();

// Freezes `pid`'s tree, dumps and seals it into `sink`, and keeps it frozen
// in `tree`. With a pre-copy in `precopy`, the pages it sent and that are
// still right are left out of the dump (kept), and the pre-copy ends.
// `done` gets the milliseconds it took, or why not (then nothing stays
// frozen).
void FreezeAndDump(EngineWorker& engine, pid_t pid, std::shared_ptr<ImageSink> sink, FrozenHolder tree,
                   std::function<void(Result<double>)> done, DumpOptions options = DumpOptions(),
                   PreCopyHolder precopy = nullptr);

// Ends a pre-copy that will not be used (on the engine thread).
void DropPreCopy(EngineWorker& engine, PreCopyHolder precopy);

// Kills (`kill`: it moved, with its System V objects, which go from here
// too) or resumes what `tree` holds, if anything, and drops it.
void LetGo(EngineWorker& engine, FrozenHolder tree, bool kill, std::function<void()> done);

// A target's last step, once the move is committed: the tree's file locks
// (restored with RestoreOptions::defer_locks: the source's frozen copy
// holds them until it is killed, at the commit), then Release, and `tree`
// is dropped. A lock held by another process (the copy not killed yet, or
// a process that took it since) is tried again every 5 ms, the tree held
// meanwhile, as a process blocked in F_SETLKW would be; `waiting` runs
// once if so, with the reason. `done`: the root's PID, or why not.
void LockAndRelease(EngineWorker& engine, RestoredHolder tree, std::function<void(const std::string&)> waiting,
                    std::function<void(Result<pid_t>)> done);

}  // namespace roam
