// HomeDeparture: a process running at its home node moves to another node
// (docs/MIGRATION.md, "Leaving home"). Here the home is also the source,
// so the arbiter's and the source's steps are one object, top to bottom:
//   adopt link to the target (made by the caller) -> the target checks the
//   tree's files on a move_in link -> freeze + dump on the engine thread ->
//   stream the image to the target on that link ->
//   the target restores it, held -> the frozen process execs `roam run`
//   as its own deputy (same PID, parent, session, fds 0-2: the user's
//   shell sees nothing) -> the deputy connects (take_over) -> RemoteRun
//   joins it to the adopt link -> move_go: the target's copy runs.
// Before the exec any failure resumes the process untouched; the exec is
// the commit point. If the deputy then never comes, the target's copy is
// killed and the process is lost (said in one line).
// Single-threaded on roamd's loop; engine work goes to the EngineWorker.
#pragma once

#include <asio.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "migrate.pb.h"
#include "node/backlog_wait.h"
#include "node/engine_worker.h"
#include "node/home_process.h"
#include "node/job_address.h"
#include "node/move_engine.h"
#include "node/move_faults.h"
#include "node/page_codec.h"
#include "node/move_progress.h"
#include "node/link_pool.h"
#include "node/remote_run.h"

namespace roam {

class ImageSender;
class PrecopySender;

struct DepartureConfig {
  std::string to, address;   // the target
  std::string roam_path;     // the `roam` binary the process execs
  std::string control_socket;
  MoveFaults faults;
  CodecChooser codec;  // how memory is compressed on the way (roamd.conf compress)
  JobAddresses* addresses = nullptr;  // this node's; the process's own address leaves with it
  std::function<void()> on_resumed;      // the process runs on at home: watch it again
  std::function<void()> on_session_end;  // for the RemoteRun that takes over
};

class HomeDeparture : public std::enable_shared_from_this<HomeDeparture> {
 public:
  using Done = std::function<void(Result<pb::MigrationFigures>)>;
  // REQUIRES: `record` outlives this object (roamd erases it only once the
  // process has ended, which cannot happen while it is frozen).
  HomeDeparture(asio::io_context& io, EngineWorker& engine, LinkPool& links, HomeProcess* record,
                std::shared_ptr<LinkSession> adopt, DepartureConfig config);
  ~HomeDeparture();

  // `done` runs once, with the figures (record->remote then runs the
  // session) or why not. `on_end` runs after it, for the owner's map.
  void Start(Done done, std::function<void()> on_end);
  // The deputy's `roam run` connected with take_over for this process.
  void DeputyArrived(std::shared_ptr<ClientChannel> client);
  // A signal sent during the move (roam kill): delivered once it is over.
  void HoldSignal(int signo) { held_signals_.push_back(signo); }
  // How far it has come (`roam migrate` on a terminal).
  pb::MoveProgress progress();

 private:
  void PreCopy();
  void Settle();  // new connections wait; the tree takes those waiting (backlog_wait.h)
  void Freeze();
  void Dumped(Result<double> dump_ms);
  void MaybeCommit();
  void Fail(const Status& why);  // before the exec: resume
  void Lost(const std::string& why);  // after it
  void Finish(Result<pb::MigrationFigures> r);

  asio::io_context& io_;
  EngineWorker& engine_;
  LinkPool& links_;
  HomeProcess* rec_;
  std::shared_ptr<LinkSession> adopt_, image_link_;
  DepartureConfig cfg_;
  FrozenHolder tree_;  // engine thread only
  std::shared_ptr<ImageSender> sender_;
  std::shared_ptr<PrecopySender> precopy_;
  std::shared_ptr<CodecChooser> codec_;
  LeavingAddress address_;
  BacklogWait backlog_;
  asio::steady_timer timer_;
  pb::MigrationFigures figures_;
  std::chrono::steady_clock::time_point start_;
  MoveMeter meter_;
  int64_t frozen_at_ms_ = 0;
  bool checked_ = false, restored_ = false, ready_ = false, execed_ = false, ended_ = false;
  bool precopy_tree_ = false;  // the target stages the whole tree's pages (LinkReply.precopy_tree)
  std::vector<int> held_signals_;
  std::vector<pb::FileIdentity> files_sent_;  // the move_in's list (sent again if it went stale)
  std::vector<std::string> carried_;           // files the image carries: removed here at the commit
  int relists_ = 0;
  std::string terminal_input_;  // a -t job: taken out of the user's terminal for the target; back if it fails
  Done done_;
  std::function<void()> on_end_;
};

}  // namespace roam
