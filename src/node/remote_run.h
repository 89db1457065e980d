// RemoteRun: the home's half of a process running on another node. It joins
// two channels: `roam run`'s UNIX socket (the user's terminal) and the
// session link to the guest roamd, and passes StreamFrames between them:
//   roam run -> guest: stdin_data, stdin_eof, signal, winsize
//   guest -> roam run: stdout_data, stderr_data, stdin_ack, error, exit
// and keeps the guest's stats for `roam ps`.
//
// Flow control: while more than a high-water mark waits to be written to
// roam run, the link is not read (so the guest stops reading the process's
// pipes). stdin is paced by roam run's credit window (see session.proto),
// so frames from roam run are always read at once.
//
// Ends: the exit frame reaches roam run (normal), or, after an exit with
// output_follows (the rest of its tree still writes), output_end does: a
// remnant in between cannot move, and takes signals to its group; the link
// breaks or the
// guest is declared dead (roam run is told, and exits 255); roam run goes
// away (the link is closed, which kills the process on the guest).
#pragma once

#include <asio.hpp>
#include <functional>
#include <memory>
#include <string>

#include "node/engine_worker.h"
#include "node/frame_channel.h"
#include "node/home_arrival.h"
#include "node/home_process.h"
#include "migrate.pb.h"
#include "node/move_faults.h"
#include "node/link_mux.h"
#include "node/move_progress.h"
#include "session.pb.h"

namespace roam {

using ClientChannel = FrameChannel<asio::local::stream_protocol::socket, pb::StreamFrame>;

class RemoteRun : public std::enable_shared_from_this<RemoteRun> {
 public:
  RemoteRun(std::shared_ptr<ClientChannel> client, std::shared_ptr<LinkSession> link, HomeProcess* record);

  // `on_end` runs once, when both channels are done with.
  void Start(std::function<void()> on_end);
  // A signal from `roam kill` (to the process only, not its group).
  void Signal(int signo);
  // The guest node was declared dead or left.
  void NodeLost(const std::string& why);

  // ---- migration: the home is the arbiter (proto/migrate.proto) ----------
  // Moves the process to node `to`, whose roamd accepted the adopt request
  // on `target`. Input, signals and window sizes wait at home meanwhile.
  // `done` runs once: with the move's figures once committed (the record
  // then says `to`), or with why it failed (the process runs on where it
  // was, or is lost if its node was lost too).
  void Move(const std::string& to, const std::string& address, std::shared_ptr<LinkSession> target,
            MoveFaults faults, std::function<void(Result<pb::MigrationFigures>)> done);
  // Moves the process back to its home, this node (HomeArrival, docs/
  // MIGRATION.md "Coming home"): the deputy becomes the process. `done` as
  // above; `on_home` runs first, once the process runs here, with the
  // signals held during the move (the record is then its owner's to turn
  // into a local one: this RemoteRun is over). Returns the arrival, which
  // takes the source's move_in link.
  std::shared_ptr<HomeArrival> MoveHome(const std::string& home, const std::string& address, EngineWorker& engine,
                                        ArrivalConfig config, std::function<void(Result<pb::MigrationFigures>)> done,
                                        std::function<void(std::vector<int> signals)> on_home);
  bool moving() const { return moving_; }
  // Its first process exited; the rest of its tree writes on (it cannot move).
  bool remnant() const { return remnant_; }
  // How far the move under way has come. REQUIRES: moving().
  pb::MoveProgress progress() const { return meter_.Snapshot(std::chrono::steady_clock::now()); }
  // Coming home failed after the deputy became a seed, and it is `roam
  // run` again (take_over): it is the client from now on.
  bool awaits_deputy() const { return deputy_away_; }
  void DeputyBack(std::shared_ptr<ClientChannel> client);

 private:
  void StartClient();
  void FromClient(pb::StreamFrame& f);
  void FromLink(pb::LinkFrame& f);
  void InstallLinkHandlers();
  void End();
  // Migration.
  void FromTarget(pb::LinkFrame& f);
  void SourceLost(const std::string& why);
  void TargetFailed(const Status& why);
  void MaybeCommit();
  void FinishMove(Result<pb::MigrationFigures> r);
  void FlushHeld();
  // The move's state; `order`: the source is told at once (else SendMoveOut).
  void BeginMove(const std::string& to, const std::string& address, MoveFaults faults,
                 std::function<void(Result<pb::MigrationFigures>)> done, bool order = true);
  void SendMoveOut(const std::string& to, const std::string& address);
  // Coming home.
  void HoldTaken();  // the deputy's answer, or the wait's end: the source is told
  bool HeldInput() const;
  void MaybeComeHome();
  void SeedReady(const pb::SeedReady& s);
  void CommitHome();
  void WaitForDeputy();

  std::shared_ptr<ClientChannel> client_;
  std::shared_ptr<LinkSession> link_;
  HomeProcess* record_;
  bool exit_seen_ = false, ended_ = false;
  bool remnant_ = false;  // exited with output_follows; output_end ends it
  std::function<void()> on_end_;
  // A move under way.
  bool moving_ = false, frozen_ = false, ready_ = false, source_lost_ = false;
  // Not ok while a target that failed as unreachable waits a moment for
  // the source's own reason (TargetFailed).
  Status target_failure_;
  std::shared_ptr<LinkSession> target_;
  std::unique_ptr<asio::steady_timer> move_timer_;
  std::vector<pb::StreamFrame> held_;  // from roam run (and roam kill) while moving
  pb::MigrationFigures figures_;
  int64_t frozen_at_ms_ = 0;
  std::chrono::steady_clock::time_point move_start_;
  uint32_t move_id_ = 0;  // of the last MoveOut sent
  MoveMeter meter_;
  MoveFaults faults_;
  std::function<void(Result<pb::MigrationFigures>)> move_done_;
  // Coming home: the target is this node.
  std::shared_ptr<HomeArrival> arrival_;
  std::function<void(std::vector<int>)> on_home_;
  bool image_home_ = false;   // the whole image is here
  bool deputy_away_ = false;  // told come_home: a seed, or on its way back to being the deputy
  bool committing_ = false, went_home_ = false;
  bool source_committed_ = false;  // a move home: the source was told to kill its copy
  std::string pending_abort_;  // why, once the deputy is back
  // Told to hold its input, the deputy answers once what it read is sent
  // (stdin_hold_ack); until then its input still goes to the source.
  bool hold_wait_ = false;
  std::unique_ptr<asio::steady_timer> hold_timer_;
  std::string hold_address_;  // of the move_out it waits to send (to: figures_.to())
};

}  // namespace roam
