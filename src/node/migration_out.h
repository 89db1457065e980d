// MigrationOut: the source side of a move (proto/migrate.proto, steps 3-6).
// Reads top to bottom: the target checks the tree's files (Start) ->
// pre-copy while it runs, if the target stages pages (PrecopySender) ->
// freeze and dump on the engine thread, the image streaming to the target as
// it is read (Freeze) -> send home what the process wrote before the
// freeze, then end the image (Dumped)
// -> tell the home the copy is with the target (OnTargetReply) -> obey the
// home: kill the frozen copy (commit) or resume it (abort) (Decide).
//
// Until move_frozen is sent, any failure (the engine refuses, the target is
// unreachable, refuses or breaks the link) resumes the process here and
// sends move_failed with the reason. After it, only the home decides; if
// the home link goes, the frozen copy is killed (a guest never outlives its
// home link), which is right whichever way the home decided.
//
// Single-threaded on roamd's loop; engine work goes to the EngineWorker.
#pragma once

#include <asio.hpp>
#include <functional>
#include <memory>
#include <string>

#include "node/engine_worker.h"
#include "node/guest_process.h"
#include "node/job_address.h"
#include "node/link_pool.h"
#include "node/move_engine.h"
#include "node/move_faults.h"
#include "node/backlog_wait.h"
#include "node/page_codec.h"

namespace roam {

class ImageSender;
class PrecopySender;

class MigrationOut : public std::enable_shared_from_this<MigrationOut> {
 public:
  MigrationOut(asio::io_context& io, EngineWorker& engine, LinkPool& links,
               std::shared_ptr<GuestProcess> guest, MoveFaults faults, CodecChooser codec, JobAddresses* addresses);
  ~MigrationOut();

  // `on_end` runs once, when the move is over either way.
  void Start(const pb::MoveOut& order, std::function<void()> on_end);

 private:
  void WaitForInputRead(bool precopy);
  void PreCopy();
  // New connections and datagrams wait from here, and the tree takes
  // those waiting in its sockets (backlog_wait.h); then Freeze.
  void Settle();
  void Freeze();
  void Dumped(Result<double> dump_ms);
  void OnTargetReply(const pb::LinkReply& reply);
  void Fail(const Status& why);  // before move_frozen: resume here, tell home
  void Decide(bool commit);           // after move_frozen
  void SendHome(pb::StreamFrame f);
  // Tells the home how far the move has come, now and every 250 ms.
  void ReportProgress(const std::string& phase);
  void Finish();

  asio::io_context& io_;
  EngineWorker& engine_;
  LinkPool& links_;
  std::shared_ptr<GuestProcess> guest_;
  MoveFaults faults_;
  pb::MoveOut order_;
  // Touched only on the engine thread (created, used, destroyed in jobs).
  FrozenHolder tree_;
  std::shared_ptr<LinkSession> target_;
  std::vector<pb::FileIdentity> files_sent_;  // the move_in's list (sent again if it went stale)
  std::vector<std::string> carried_;           // files the image carries: removed here at the commit
  int relists_ = 0;
  std::shared_ptr<ImageSender> sender_;
  std::shared_ptr<PrecopySender> precopy_;
  std::shared_ptr<CodecChooser> codec_;
  LeavingAddress address_;  // the tree's own, if it has one
  uint64_t bytes_sent_ = 0;
  double dump_ms_ = 0;
  int64_t frozen_at_ms_ = 0;
  bool checked_ = false, frozen_sent_ = false, ended_ = false;
  bool precopy_tree_ = false;  // the target stages the whole tree's pages (LinkReply.precopy_tree)
  std::function<void()> on_end_;
  std::unique_ptr<asio::steady_timer> progress_timer_;
  // A move home: waiting until the process has read its input.
  static constexpr auto kUnreadPatience = std::chrono::seconds(2);  // without reading a byte (Python reads 8 KiB at a time)
  static constexpr auto kUnreadLimit = std::chrono::seconds(10);   // in all
  std::unique_ptr<asio::steady_timer> input_timer_;
  size_t unread_ = 0;
  std::chrono::steady_clock::time_point unread_since_, unread_start_;
  BacklogWait backlog_;
};

}  // namespace roam
