// The engine steps every move source takes, run on the EngineWorker: the
// frozen tree lives in a holder that only the engine thread touches (it is
// created, used and dropped in jobs, as ptrace requires).
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
using FrozenHolder = std::shared_ptr<std::unique_ptr<FrozenTree>>;
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

}  // namespace roam
