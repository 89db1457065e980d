// Pre-copied pages written into a PageStage (ckpt/page_stage.h) as they
// arrive: on the engine thread (a write may fault in a GiB), in arrival
// order (a later round's copy of a page comes later), the source's link
// paused while more than 64 MiB wait and resumed below 16 MiB. Shared by a
// guest target's staged root (MigrationIn) and a home's deputy
// (HomeArrival). A failed write spoils the stage: the move then fails or
// goes without it (the caller decides when it restores).
#pragma once

#include <functional>
#include <memory>

#include "ckpt/page_stage.h"
#include "common/status.h"
#include "migrate.pb.h"
#include "node/engine_worker.h"
#include "node/link_mux.h"

namespace roam {

// Touched only on the engine thread.
struct Staging {
  std::unique_ptr<PageStage> stage;
  Status error;
};

class StagingWriter {
 public:
  StagingWriter(EngineWorker& engine, std::shared_ptr<Staging> staging)
      : engine_(engine), staging_(std::move(staging)), backlog_(std::make_shared<uint64_t>(0)) {}
  // Takes `p`'s data; `source` is the link it came on.
  void Post(pb::PrecopyPages& p, const std::shared_ptr<LinkSession>& source);
  // `done` runs on the loop once every page posted so far is written (or
  // the stage failed: staging()->error says so).
  void WhenWritten(std::function<void()> done);
  const std::shared_ptr<Staging>& staging() const { return staging_; }

 private:
  EngineWorker& engine_;
  std::shared_ptr<Staging> staging_;
  std::shared_ptr<uint64_t> backlog_;  // bytes posted, not yet written (loop thread)
};

// A source's precopy_sync: answers precopy_synced on `source` once `writer`
// (none: at once) has written every page posted so far, unless `ended()`
// says the move is over by then.
void AnswerPrecopySync(StagingWriter* writer, std::shared_ptr<LinkSession> source, std::function<bool()> ended);

}  // namespace roam
