// MigrationIn: the target side of a move (proto/migrate.proto, steps 1, 3,
// 4 and 6). Created when the home's adopt request is accepted; the source
// then connects on a link of its own, the files its tree uses are checked
// here, pre-copied pages (if the source sends any) are staged in the future
// root process (PageStage) while the original still runs, and the image
// arrives, is written to the
// node's tmpfs, and is restored on the engine thread into a tree that is
// held, not running. The home hears move_ready; on move_go the tree is
// released and becomes a GuestProcess whose session link is the adopt link.
//
// Whatever fails before move_go (the image, the restore, the source link,
// the home link) kills what was restored and tells the home; nothing runs.
// Single-threaded on roamd's loop; engine work goes to the EngineWorker.
#pragma once

#include <asio.hpp>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "node/engine_worker.h"
#include "node/guest_process.h"
#include "node/image_receiver.h"
#include "node/job_address.h"
#include "node/move_faults.h"
#include "node/link_mux.h"
#include "node/precopy_staging.h"

namespace roam {

class PageStage;
class RestoredTree;

class MigrationIn : public std::enable_shared_from_this<MigrationIn> {
 public:
  MigrationIn(asio::io_context& io, EngineWorker& engine, pb::SpawnRequest spawn, std::shared_ptr<LinkSession> home,
              std::string image_dir, MoveFaults faults, JobAddresses* addresses);
  ~MigrationIn();

  // `on_running` gets the new guest once it runs (its owner starts it);
  // `on_end` runs once, after that or after a failure.
  void Start(std::function<void(std::shared_ptr<GuestProcess>)> on_running, std::function<void()> on_end);
  // The source's link, once it asked move_in for this process: the files
  // it lists are checked here (on `node`) before the source freezes.
  void AcceptSource(std::shared_ptr<LinkSession> source, const pb::MoveIn& req, const std::string& node);

  const std::string& gpid() const { return spawn_.gpid(); }
  bool has_source() const { return source_ != nullptr; }

 private:
  void OnPrecopyPages(pb::PrecopyPages& p);
  void OnPrecopySync();  // answers once the pages sent so far are staged
  void OnChunk(const pb::ImageChunk& c);
  void OnImageEnd(const pb::ImageEnd& e);
  void Restored(Result<double> restore_ms);
  void Go();
  void Abort(const Status& why);
  void ClosePipes();
  void End();

  asio::io_context& io_;
  EngineWorker& engine_;
  pb::SpawnRequest spawn_;
  std::shared_ptr<LinkSession> home_, source_;
  std::string dir_;
  MoveFaults faults_;
  JobAddresses* addresses_;
  ArrivingAddress address_;  // the tree's own, if it has one
  // Touched only on the engine thread.
  std::shared_ptr<std::unique_ptr<RestoredTree>> tree_;
  std::shared_ptr<Staging> staging_;  // the staged root of an incoming pre-copy
  std::unique_ptr<StagingWriter> staging_writer_;
  ImageReceiver receiver_;
  pb::ImageEnd end_;
  int in_[2] = {-1, -1}, out_[2] = {-1, -1}, err_[2] = {-1, -1};
  int pty_master_ = -1, pty_slave_ = -1;  // a -t job's new terminal instead of the pipes
  bool restoring_ = false, ready_ = false, going_ = false, ended_ = false;
  std::vector<std::string> carried_;  // the image's carried files (CarriedFilesIn): removed if the move fails
  int rechecks_ = 0;  // the source was asked to list its files again (file_identity.h)
  bool source_gave_up_ = false;  // the source sent its reason (passed on to the home as its own)
  std::function<void(std::shared_ptr<GuestProcess>)> on_running_;
  std::function<void()> on_end_;
};

}  // namespace roam
