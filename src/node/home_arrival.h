// HomeArrival: the target's side of a move when the target is the
// process's home (docs/MIGRATION.md, "Coming home"). The process must get
// back its PID, which its deputy (`roam run`, the user's shell's child)
// holds, so the deputy itself becomes the process:
//   the source pre-copies the process's memory here while it runs on,
//   into the deputy itself (it reserves room, and roamd writes the pages
//   into it: PageStage::Adopt), and then streams the image on the same
//   move_in link (files checked first, as on any target) -> it must have
//   no unread
//   input, and the PIDs of its other processes must be free here; the
//   source is told it arrived and hands over
//   (move_frozen) -> RemoteRun tells the deputy come_home -> the deputy
//   writes out its output and becomes the seed in place, with the staged
//   memory (cli/become_seed.h), which makes the tree's
//   other processes (asking NextPid() for their PIDs if it may not choose
//   them) and reports seed_ready -> Rebuild(): the engine rebuilds the
//   tree in place, held ->
//   RemoteRun commits: Go() lets it run, the source kills its copy.
// Nothing here ever kills the deputy: whatever fails (the image, the seed,
// the rebuild, the home's own decision) ends with the deputy exec'd again
// as `roam run` (ROAM_TAKE_OVER), and the source's copy resumes.
// Single-threaded on roamd's loop; engine work goes to the EngineWorker.
#pragma once

#include <asio.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "ckpt/restore.h"
#include "node/engine_worker.h"
#include "node/home_process.h"
#include "node/image_receiver.h"
#include "node/job_address.h"
#include "node/move_faults.h"
#include "node/link_mux.h"
#include "node/precopy_staging.h"
#include "session.pb.h"

namespace roam {

// What a deputy's PID execs to be the deputy again: `roam run` with
// ROAM_TAKE_OVER=GPID (it then connects to roamd with take_over).
InPlaceFallback DeputyProgram(const std::string& roam_path, const std::string& control_socket,
                              const std::string& gpid);

struct ArrivalConfig {
  std::string image_dir;  // on this node's tmpfs
  std::string roam_path, control_socket;
  MoveFaults faults;
  JobAddresses* addresses = nullptr;  // this node's: the process's own address comes with it
  // The whole image is here: the deputy may be told to come home.
  std::function<void()> on_image;
  // The process is rebuilt and held (figures for the move).
  std::function<void(double restore_ms, int64_t frozen_at_ms)> on_ready;
  // It cannot come home: why (a deputy that became a seed is on its way back).
  std::function<void(const Status& why)> on_failed;
  // Pre-copy: asks the deputy to reserve `len` bytes of address space;
  // its answer comes to Reserved().
  std::function<void(uint64_t len)> reserve;
};

class HomeArrival : public std::enable_shared_from_this<HomeArrival> {
 public:
  // REQUIRES: `record` outlives this object.
  HomeArrival(EngineWorker& engine, HomeProcess* record, ArrivalConfig config);
  ~HomeArrival();

  // The source's move_in link: the files it lists are checked on `node`.
  void AcceptSource(std::shared_ptr<LinkSession> source, const pb::MoveIn& req, const std::string& node);
  const std::string& image_dir() const { return receiver_.dir(); }
  // Once the image is whole: the pre-copied pieces in the deputy, of every
  // process of the tree (its seed hands each child its own).
  const std::vector<StagedPiece>& staged() const { return staged_; }
  // The deputy's answer to cfg.reserve: the address of its reservation (0:
  // none; the move goes without pre-copy).
  void Reserved(uint64_t at);
  // The deputy reported as a seed: rebuild it (on_ready or on_failed).
  void Rebuild(const pb::SeedReady& seed);
  // The deputy reported as a seed but must not be rebuilt (input came
  // meanwhile, or the move was called off): it becomes the deputy again.
  // No callback.
  void SendBack(const pb::SeedReady& seed);
  // The seed of a tree asks that `pid`, one of the tree's, be the next PID
  // the kernel gives out (restore.h: PidAsker).
  Status NextPid(pid_t pid);
  // Commit: the rebuilt process runs, once it holds its file locks.
  // `source_must_let_go` runs if the source's copy holds one of them: the
  // caller then tells the source to kill it (the commit point comes
  // first), and the locks are taken once it is dead. `done` gets whether
  // it was let go.
  void Go(std::function<void()> source_must_let_go, std::function<void(Status)> done);
  // Not committing, whatever the state: the image is dropped, and a seed
  // or a held process execs the deputy again. Idempotent; no callback.
  void Abort();

 private:
  void OnPrecopyPages(pb::PrecopyPages& p);
  void OnPrecopySync();  // answers once the pages sent so far are staged
  void OnImageEnd(const pb::ImageEnd& e);
  void ImageWhole();  // the image is whole (pre-copied pages folded in)
  void Fail(const std::string& why);
  void Fail(const Status& why);  // keeps its code (kBusy: try again later)
  void PostUndo();
  void TakeSeed(const pb::SeedReady& s);
  void RestorePidCount();  // after NextPid(): the node's PID count goes on where it was
  // A -t job: the user's terminal takes the mode its pty had and what was
  // typed there and not read (before anything typed here during the move).
  void SettleTerminal();

  EngineWorker& engine_;
  HomeProcess* rec_;
  ArrivalConfig cfg_;
  ArrivingAddress address_;  // the process's own, if it has one
  ImageReceiver receiver_;
  void ReplyPrecopy(bool precopy);
  // Pre-copy into the deputy (PageStage::Adopt on its reservation).
  std::shared_ptr<Staging> staging_;
  std::unique_ptr<StagingWriter> staging_writer_;
  uint64_t reserve_len_ = 0;
  bool reserving_ = false;
  bool settling_ = false;  // the image is here; the last staged writes are being checked
  std::vector<StagedPiece> staged_;
  std::shared_ptr<LinkSession> source_;
  // Touched only on the engine thread.
  std::shared_ptr<std::unique_ptr<RestoredTree>> tree_;
  InPlaceSeed seed_;
  std::set<pid_t> tree_pids_;  // the image's other processes
  int rechecks_ = 0;  // the source was asked to list its files again (file_identity.h)
  int last_pid_before_ = 0;    // ns_last_pid before NextPid() first moved it
  int64_t frozen_at_ms_ = 0;
  int terminal_ = -1;  // a -t job: the deputy's terminal (the user's), an fd of ours
  std::optional<pb::Termios> terminal_mode_;
  std::string terminal_input_;  // typed on its pty and not read, echoed there already
  bool have_image_ = false, seeded_ = false, rebuild_started_ = false, rebuilding_ = false, ended_ = false;
  std::vector<std::string> carried_;  // the image's carried files (CarriedFilesIn): removed if the move fails
};

}  // namespace roam
