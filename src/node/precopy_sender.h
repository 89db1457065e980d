// PrecopySender: pre-copy for a move source (docs/MIGRATION.md,
// "Pre-copy"). While the process runs, it sends rounds of its memory to
// the target as PrecopyPages frames on the image link: the whole first,
// then what it wrote since, until a round is small enough or stops
// shrinking (PreCopyConverged). Pages are read on the engine thread a few
// MiB at a time, and only while the link's send queue is short, so a large
// process never sits in memory and other moves' engine work interleaves.
// Then the owner freezes, with holder() handed to FreezeAndDump: the dump
// leaves out the pages the target holds right.
//
// Used by both kinds of move source (a guest, a process leaving home).
// Single-threaded on roamd's loop; the PreCopy itself is touched only on
// the engine thread.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ckpt/precopy.h"
#include "common/status.h"
#include "node/engine_worker.h"
#include "node/move_engine.h"
#include "node/move_faults.h"
#include "node/link_mux.h"
#include "node/page_codec.h"

namespace roam {

// The request a move source opens its image link with (MoveIn): the files
// the tree uses, this CPU's XSAVE components, and `root`'s tree to pre-copy. Every
// process is pre-copied, however small: the target then creates the root
// seed before the freeze instead of in it (16 KiB: frozen 26 ms by
// stop-and-copy, 19 ms by pre-copy). The target may still say no.
pb::LinkFrame MoveInRequest(const std::string& gpid, pid_t root, const std::vector<pb::FileIdentity>& files);

class PrecopySender : public std::enable_shared_from_this<PrecopySender> {
 public:
  // `chooser` picks each batch's compression (node/page_codec.h). `tree`:
  // the target stages other processes' pages too (LinkReply.precopy_tree);
  // else only the root `pid` is pre-copied.
  PrecopySender(EngineWorker& engine, std::shared_ptr<LinkSession> link, pid_t pid, bool tree, MoveFaults faults,
                std::shared_ptr<CodecChooser> chooser);

  // `done` runs once: ok when it is time to freeze; an error when the link
  // failed or was cut (the move fails). If pre-copy itself cannot run here
  // (the engine refuses, the kernel lacks dirty tracking...), done(ok) comes
  // at once with nothing held: the move goes on as a stop-and-copy, whose
  // freeze then names any refusal.
  void Start(std::function<void(Status)> done);
  // The target's precopy_synced: every page sent is staged there.
  void Synced();
  // Stops sending; the owner then drops holder() with LetGo/FreezeAndDump.
  void Cancel();

  const PreCopyHolder& holder() const { return holder_; }
  int rounds() const { return rounds_; }
  uint64_t bytes_sent() const { return bytes_sent_; }              // over the link
  uint64_t memory_sent() const { return memory_sent_; }            // pages, before compression
  uint64_t bytes_compressed() const { return bytes_compressed_; }  // page bytes that went compressed

 private:
  void NextRound();
  void Pump();
  struct Packed {
    PageBatch batch;  // its data moved into `piece`
    PackedPiece piece;
  };
  void Sent(Result<std::vector<Packed>> batches, bool round_done);
  // The process execed, or tracking broke: what was sent is not trusted;
  // the move goes on as a stop-and-copy.
  void GiveUp(const Status& why);
  // Converged: asks the target (one that stages trees) to place every page
  // sent before done(ok), so that the freeze does not wait for it.
  void Sync();
  void Finish(Status st);

  EngineWorker& engine_;
  std::shared_ptr<LinkSession> link_;
  pid_t pid_;
  bool tree_;
  MoveFaults faults_;
  PreCopyHolder holder_;
  PreCopyPolicy policy_;
  std::function<void(Status)> done_;
  bool pumping_ = false;   // a Pump job is on the engine, or its pages are being handed to the link
  bool in_round_ = false;  // between a round's start and its last pump
  bool syncing_ = false;   // precopy_sync sent, precopy_synced not yet back
  int rounds_ = 0;
  uint64_t last_round_ = 0, bytes_sent_ = 0, memory_sent_ = 0, bytes_compressed_ = 0;
  std::shared_ptr<CodecChooser> chooser_;
};

}  // namespace roam
