#include "node/remote_run.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "common/proc_stat.h"
#include "wire/reply.h"

namespace roam {

namespace {
constexpr size_t kClientHighWater = 256 << 10;
}

RemoteRun::RemoteRun(std::shared_ptr<ClientChannel> client, std::shared_ptr<LinkSession> link,
                     HomeProcess* record)
    : client_(std::move(client)), link_(std::move(link)), record_(record) {}

void RemoteRun::InstallLinkHandlers() {
  auto self = shared_from_this();
  link_->set_handlers([this, self](pb::LinkFrame& f) { FromLink(f); },
                      [this, self](const std::string& why) {
                        if (remnant_) return client_->Close("the rest of its output is lost: " + why);
                        if (exit_seen_) return;
                        if (moving_) return SourceLost(why);
                        NodeLost("lost the connection to " + record_->where + " (" + why + ")");
                      });
}

void RemoteRun::Start(std::function<void()> on_end) {
  on_end_ = std::move(on_end);
  InstallLinkHandlers();
  StartClient();
}

void RemoteRun::StartClient() {
  auto self = shared_from_this();
  client_->set_on_drained([this, self] {
    if (link_) link_->Resume();
  });
  client_->Start([this, self](pb::StreamFrame& f) { FromClient(f); },
                 [this, self](const std::string&) {
                   // The deputy became a seed (it closes its line), or the
                   // process came home: not an end.
                   if (deputy_away_ || went_home_) return;
                   // roam run is gone (killed, or done after the exit frame):
                   // closing the link kills the process if it still runs.
                   if (!exit_seen_) spdlog::info("{}: roam run went away; ending the process", record_->gpid);
                   link_->Close("roam run went away", false);
                   if (target_) target_->Close("roam run went away", false);
                   if (moving_) FinishMove(Status::Error("roam run went away"));
                   End();
                 });
}

void RemoteRun::FromClient(pb::StreamFrame& f) {
  switch (f.kind_case()) {
    case pb::StreamFrame::kSeedReady:
      return SeedReady(f.seed_ready());
    case pb::StreamFrame::kStageReserved:  // the deputy's room for pre-copied memory
      if (moving_ && arrival_ && !deputy_away_) arrival_->Reserved(f.stage_reserved());
      return;
    case pb::StreamFrame::kPidWanted: {  // the seed of a tree coming home
      Status st = moving_ && arrival_ && deputy_away_ ? arrival_->NextPid(f.pid_wanted())
                                                      : Status::Error("not coming home");
      pb::StreamFrame a;
      if (st.ok()) {
        a.set_pid_next(f.pid_wanted());
      } else {
        a.set_error(st.message());
      }
      client_->Send(a);
      return;
    }
    case pb::StreamFrame::kStdinHoldAck:
      if (moving_ && hold_wait_) HoldTaken();
      return;
    case pb::StreamFrame::kStdinData:
    case pb::StreamFrame::kStdinEof:
    case pb::StreamFrame::kSignal:
    case pb::StreamFrame::kWinsize: {
      if (moving_ && !hold_wait_) {
        held_.push_back(std::move(f));
        return;
      }
      pb::LinkFrame out;
      *out.mutable_stream() = std::move(f);
      link_->Send(out);
      break;
    }
    default:
      break;
  }
}

void RemoteRun::FromLink(pb::LinkFrame& f) {
  if (!f.has_stream()) return;
  pb::StreamFrame& s = *f.mutable_stream();
  if (s.move_id() != 0 && s.move_id() != move_id_) return;  // a move given up on already
  switch (s.kind_case()) {
    case pb::StreamFrame::kStats:
      record_->stats = s.stats();
      return;
    case pb::StreamFrame::kMoveProgress:
      if (moving_) meter_.Report(s.move_progress(), std::chrono::steady_clock::now());
      return;
    case pb::StreamFrame::kMoveFrozen:
      if (!moving_) return;
      frozen_ = true;
      meter_.Report(pb::MoveProgress(), std::chrono::steady_clock::now());
      meter_.SetPhase("committing");
      figures_.set_bytes_sent(s.move_frozen().bytes_sent());
      figures_.set_dump_ms(s.move_frozen().dump_ms());
      figures_.set_rounds(std::max<uint32_t>(1, s.move_frozen().rounds()));
      figures_.set_precopy_bytes(s.move_frozen().precopy_bytes());
      figures_.set_bytes_compressed(s.move_frozen().bytes_compressed());
      if (arrival_) return MaybeComeHome();
      return MaybeCommit();
    case pb::StreamFrame::kMoveFailed:
      if (!moving_) return;
      if (target_) {
        target_->set_handlers(nullptr, nullptr);
        target_->Close("move failed", false);
      }
      if (arrival_) arrival_->Abort();
      return FinishMove(WireStatus(s.code(), s.move_failed()));
    case pb::StreamFrame::kExit:
      exit_seen_ = true;
      if (moving_ && !deputy_away_) {
        // It ended at the source while being pre-copied: nothing is left
        // to move (the move used to end later as "roam run went away").
        if (target_) {
          target_->set_handlers(nullptr, nullptr);
          target_->Close("the process ended", false);
        }
        if (arrival_) arrival_->Abort();
        FinishMove(Status::Error(StatusCode::kNotFound, record_->gpid + " ended during the move"));
      }
      client_->Send(s);
      if (s.exit().output_follows() && !moving_) {
        // The rest of its tree writes on; it can no longer move. Its deputy
        // gives the status to the shell and leaves a child to write the rest.
        remnant_ = true;
        record_->stats.set_cantmove("exited");
        record_->stats.set_state("exited");
        record_->stats.set_cpu_percent(0);
        record_->stats.set_demand(0);
        return;
      }
      client_->Close("exit sent");
      link_->Close("done", false);
      return;
    case pb::StreamFrame::kOutputEnd:
      client_->Send(s);
      client_->Close("output ended");
      link_->Close("done", false);
      return;
    case pb::StreamFrame::kStdoutData:
    case pb::StreamFrame::kStderrData:
    case pb::StreamFrame::kStdinAck:
    case pb::StreamFrame::kError:
      client_->Send(s);
      if (client_->queued_bytes() > kClientHighWater) link_->Pause();
      return;
    default:
      return;
  }
}

void RemoteRun::Signal(int signo) {
  if (moving_ && !hold_wait_) {
    pb::StreamFrame held;
    held.mutable_signal()->set_signo(signo);
    held_.push_back(std::move(held));
    return;
  }
  pb::LinkFrame f;
  f.mutable_stream()->mutable_signal()->set_signo(signo);
  link_->Send(f);
}

void RemoteRun::NodeLost(const std::string& why) {
  if (remnant_ && !ended_) return client_->Close("node lost: " + why);
  if (exit_seen_ || ended_) return;
  if (moving_ && !source_lost_) return SourceLost(why);  // the target may have it already
  if (moving_) FinishMove(Status::Error("node " + record_->where + " was lost during the move: " + why));
  if (target_) target_->Close("node lost", false);
  spdlog::warn("{}: {}", record_->gpid, why);
  pb::StreamFrame f;
  f.set_error("node " + record_->where + " running " + record_->gpid + " is lost: " + why);
  client_->Send(f);
  client_->Close("node lost");
  link_->Close("node lost", false);
  End();
}

// ---- migration -------------------------------------------------------------------------

namespace {
int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}
constexpr auto kMoveTimeout = std::chrono::seconds(300);
constexpr auto kSourceLostGrace = std::chrono::seconds(10);
// How long a target's "lost the link to the source" waits for the source's
// own reason (its move failed, the process ended), sent through the session.
constexpr auto kSourceReasonGrace = std::chrono::milliseconds(300);
// How long a move home waits for the deputy to say its input is held: it
// answers at once unless it has bytes read and the process does not take
// them; then the move goes on, and those bytes refuse it.
constexpr auto kHoldAckWait = std::chrono::seconds(2);
}  // namespace

void RemoteRun::Move(const std::string& to, const std::string& address, std::shared_ptr<LinkSession> target,
                     MoveFaults faults, std::function<void(Result<pb::MigrationFigures>)> done) {
  target_ = std::move(target);
  auto self = shared_from_this();
  target_->set_handlers([this, self](pb::LinkFrame& f) { FromTarget(f); },
                        [this, self](const std::string& why) { TargetFailed(Status::Error(StatusCode::kUnavailable, "lost the link to " + figures_.to() + ": " + why)); });
  BeginMove(to, address, faults, std::move(done));
}

std::shared_ptr<HomeArrival> RemoteRun::MoveHome(const std::string& home, const std::string& address,
                                                 EngineWorker& engine, ArrivalConfig config,
                                                 std::function<void(Result<pb::MigrationFigures>)> done,
                                                 std::function<void(std::vector<int>)> on_home) {
  auto self = shared_from_this();
  const MoveFaults faults = config.faults;
  config.on_image = [this, self] {
    image_home_ = true;
    MaybeComeHome();
  };
  config.on_ready = [this, self](double restore_ms, int64_t frozen_at_ms) {
    ready_ = true;
    figures_.set_restore_ms(restore_ms);
    frozen_at_ms_ = frozen_at_ms;
    MaybeCommit();
  };
  config.on_failed = [this, self](const Status& why) { TargetFailed(why); };
  config.reserve = [this, self](uint64_t len) {
    pb::StreamFrame f;
    f.set_stage_reserve(len);
    client_->Send(f);
  };
  arrival_ = std::make_shared<HomeArrival>(engine, record_, std::move(config));
  on_home_ = std::move(on_home);
  image_home_ = deputy_away_ = committing_ = false;
  pending_abort_.clear();
  // Input the deputy has not read stays in the terminal or pipe, where the
  // process reads it at home; the source lets it read what it was given
  // before it freezes (MigrationOut). What the deputy read before the hold
  // reached it goes to the source too: the source is told to move only
  // once the deputy says all of it was sent (else it would be held here,
  // and refuse the move: a `sha256sum < file` was refused at once).
  BeginMove(home, address, faults, std::move(done), /*order=*/false);
  hold_wait_ = true;
  hold_address_ = address;
  pb::StreamFrame hold;
  hold.set_stdin_hold(true);
  client_->Send(hold);
  hold_timer_ = std::make_unique<asio::steady_timer>(link_->executor());
  hold_timer_->expires_after(kHoldAckWait);
  hold_timer_->async_wait([this, self](asio::error_code ec) {
    if (!ec && hold_wait_) HoldTaken();
  });
  return arrival_;
}

void RemoteRun::HoldTaken() {
  hold_wait_ = false;
  if (hold_timer_) hold_timer_->cancel();
  if (!moving_ || source_lost_ || exit_seen_) return;  // ended meanwhile (FinishMove ran)
  SendMoveOut(figures_.to(), hold_address_);
}

void RemoteRun::BeginMove(const std::string& to, const std::string& address, MoveFaults faults,
                          std::function<void(Result<pb::MigrationFigures>)> done, bool order) {
  moving_ = true;
  frozen_ = ready_ = source_lost_ = source_committed_ = false;
  target_failure_ = Status::Ok();
  faults_ = faults;
  move_done_ = std::move(done);
  move_start_ = std::chrono::steady_clock::now();
  figures_.Clear();
  figures_.set_gpid(record_->gpid);
  figures_.set_from(record_->where);
  figures_.set_to(to);
  figures_.set_rounds(1);
  meter_.Begin(record_->gpid, record_->where, to, move_start_);
  auto self = shared_from_this();
  move_timer_ = std::make_unique<asio::steady_timer>(link_->executor());
  move_timer_->expires_after(kMoveTimeout);
  move_timer_->async_wait([this, self](asio::error_code ec) {
    if (!ec && moving_) TargetFailed(Status::Error(StatusCode::kUnavailable, "the move did not finish in " + std::to_string(kMoveTimeout.count()) + " s"));
  });
  if (order) SendMoveOut(to, address);
}

void RemoteRun::SendMoveOut(const std::string& to, const std::string& address) {
  pb::LinkFrame order;
  order.mutable_stream()->mutable_move_out()->set_move_id(++move_id_);
  order.mutable_stream()->mutable_move_out()->set_to(to);
  order.mutable_stream()->mutable_move_out()->set_address(address);
  link_->Send(order);
}

void RemoteRun::FromTarget(pb::LinkFrame& f) {
  if (!moving_ || !f.has_stream()) return;
  const pb::StreamFrame& s = f.stream();
  if (s.has_move_ready()) {
    ready_ = true;
    figures_.set_restore_ms(s.move_ready().restore_ms());
    frozen_at_ms_ = s.move_ready().frozen_at_ms();
    return MaybeCommit();
  }
  if (s.kind_case() == pb::StreamFrame::kError) {
    TargetFailed(WireStatus(s.code(), s.error_from_source() ? s.error() : figures_.to() + ": " + s.error()));
  }
}

void RemoteRun::SourceLost(const std::string& why) {
  if (!moving_ || source_lost_) return;
  // The source's roamd (and with it the frozen copy) is gone. If the
  // target holds a complete copy, it carries on; else the process is lost.
  source_lost_ = true;
  spdlog::warn("{}: lost {} during the move ({})", record_->gpid, figures_.from(), why);
  if (!target_failure_.ok()) return TargetFailed(target_failure_);  // the target has failed already: no copy anywhere
  if (ready_) return MaybeCommit();
  if (arrival_ && image_home_) return MaybeComeHome();  // the whole image is here
  auto self = shared_from_this();
  move_timer_->expires_after(kSourceLostGrace);
  move_timer_->async_wait([this, self](asio::error_code ec) {
    if (!ec && moving_) TargetFailed(Status::Error(StatusCode::kUnavailable, "the target got no complete image"));
  });
}

void RemoteRun::TargetFailed(const Status& why) {
  if (!moving_ || committing_) return;
  if (target_) {
    target_->set_handlers(nullptr, nullptr);
    target_->Close("move failed", false);
  }
  if (arrival_) arrival_->Abort();
  if (deputy_away_) {
    // The deputy is a seed, or on its way back to being `roam run`: the
    // source resumes once it is back, so that no output goes unwritten.
    if (pending_abort_.empty()) pending_abort_ = why.message();
    WaitForDeputy();
    return;
  }
  if (source_lost_) {
    FinishMove(Status::Error(StatusCode::kUnavailable, "node " + figures_.from() + " was lost during the move, and " + why.message()));
    return NodeLost("lost during a move to " + figures_.to());
  }
  // A target that lost its link to the source (kUnavailable) may have lost
  // it because the source gave up and closed it: the source's reason (its
  // dump failed, the process ended) comes through the session a moment
  // later (kMoveFailed, kExit finish the move with it). Seen: a move home
  // just as the process exited answered "lost the link to the source:
  // connection closed by peer".
  if (why.code() == StatusCode::kUnavailable && target_failure_.ok()) {
    target_failure_ = why;
    auto self = shared_from_this();
    move_timer_->expires_after(kSourceReasonGrace);
    move_timer_->async_wait([this, self](asio::error_code ec) {
      if (!ec && moving_) TargetFailed(target_failure_);
    });
    return;
  }
  // The source still holds the frozen copy: it resumes.
  pb::LinkFrame abort;
  abort.mutable_stream()->mutable_move_decision()->set_commit(false);
  link_->Send(abort);
  FinishMove(why);
}

// Waits for the deputy to be `roam run` again (DeputyBack). It is given up
// for lost only once its PID is gone (killed): stopped by the user
// (Ctrl-Z, with come_home not yet read) or slow, it is waited for.
void RemoteRun::WaitForDeputy() {
  auto self = shared_from_this();
  move_timer_->expires_after(kSourceLostGrace);
  move_timer_->async_wait([this, self](asio::error_code ec) {
    if (ec || !moving_ || !deputy_away_) return;
    const char state = ReadProcState(record_->pid);
    if (state != 0 && state != 'Z' && state != 'X') return WaitForDeputy();
    deputy_away_ = false;
    spdlog::error("{}: its deputy is gone: the process is lost", record_->gpid);
    if (!source_lost_) {
      pb::LinkFrame kill;  // nobody at home to see it any more
      kill.mutable_stream()->mutable_move_decision()->set_commit(true);
      link_->Send(kill);
    }
    link_->Close("deputy lost");
    FinishMove(Status::Error(pending_abort_ + "; then its deputy was killed: the process is lost"));
    End();
  });
}

void RemoteRun::MaybeCommit() {
  if (!moving_ || !ready_ || !(frozen_ || source_lost_)) return;
  if (arrival_) return CommitHome();
  faults_.At("home-committing");
  // The commit point: the target's copy is the process from now on.
  pb::LinkFrame go;
  go.mutable_stream()->set_move_go(true);
  target_->Send(go);
  link_->set_handlers(nullptr, nullptr);
  if (!source_lost_) {
    pb::LinkFrame commit;
    commit.mutable_stream()->mutable_move_decision()->set_commit(true);
    link_->Send(commit);
  }
  link_->Close("moved away");
  link_ = std::move(target_);
  InstallLinkHandlers();
  record_->Arrived(figures_.to());
  figures_.set_total_ms(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - move_start_).count());
  if (frozen_at_ms_ > 0) figures_.set_frozen_ms(static_cast<double>(std::max<int64_t>(0, WallMs() - frozen_at_ms_)));
  spdlog::info("{} moved {} -> {} in {:.1f} ms ({:.1f} ms frozen, {} bytes)", record_->gpid, figures_.from(),
               figures_.to(), figures_.total_ms(), figures_.frozen_ms(), figures_.bytes_sent());
  FinishMove(figures_);
}

void RemoteRun::FinishMove(Result<pb::MigrationFigures> r) {
  if (!moving_) return;
  moving_ = false;
  hold_wait_ = false;
  if (hold_timer_) hold_timer_->cancel();
  target_ = nullptr;
  if (arrival_ && !went_home_ && !deputy_away_ && client_ && !client_->closed()) {
    pb::StreamFrame release;  // it stays away: its deputy drops the memory it staged
    release.set_stage_release(true);
    client_->Send(release);
    pb::StreamFrame read_again;  // and reads its input again
    read_again.set_stdin_hold(false);
    client_->Send(read_again);
  }
  arrival_ = nullptr;
  if (move_timer_) move_timer_->cancel();
  FlushHeld();
  if (auto d = std::move(move_done_)) d(std::move(r));
}

void RemoteRun::FlushHeld() {
  std::vector<pb::StreamFrame> held = std::move(held_);
  held_.clear();
  for (pb::StreamFrame& f : held) {
    pb::LinkFrame out;
    *out.mutable_stream() = std::move(f);
    link_->Send(out);
  }
}

// ---- coming home -----------------------------------------------------------------------

bool RemoteRun::HeldInput() const {
  for (const pb::StreamFrame& f : held_) {
    if (f.has_stdin_data() && !f.stdin_data().empty()) return true;
  }
  return false;
}

void RemoteRun::MaybeComeHome() {
  if (!moving_ || !arrival_ || !image_home_ || !(frozen_ || source_lost_) || deputy_away_) return;
  if (HeldInput()) return TargetFailed(Status::Error(StatusCode::kBusy, "it was given input during the move; it can come home once it has read it"));
  // Everything the process wrote before the freeze was sent to roam run
  // before move_frozen: come_home comes after it on the same line.
  deputy_away_ = true;
  pb::StreamFrame f;
  f.mutable_come_home()->set_image_dir(arrival_->image_dir());
  f.mutable_come_home()->set_gpid(record_->gpid);
  for (const StagedPiece& s : arrival_->staged()) {
    pb::StagedPiece* out = f.mutable_come_home()->add_staged();
    out->set_pid(s.pid);
    out->set_at(s.at);
    out->set_len(s.len);
    out->set_vaddr(s.vaddr);
  }
  client_->Send(f);
}

void RemoteRun::SeedReady(const pb::SeedReady& s) {
  if (!moving_ || !arrival_ || !deputy_away_) return;
  // The seed execs `roam run` again by itself when it could not prepare.
  if (!s.error().empty()) return TargetFailed(Status::Error("its deputy could not become it: " + s.error()));
  // Called off meanwhile, or bytes read by the deputy while it stopped
  // reading are held here: it goes back to being the deputy.
  if (!pending_abort_.empty() || HeldInput()) {
    arrival_->SendBack(s);
    return TargetFailed(Status::Error(StatusCode::kBusy, "it was given input during the move; it can come home once it has read it"));
  }
  arrival_->Rebuild(s);
}

void RemoteRun::CommitHome() {
  committing_ = true;
  faults_.At("home-committing");
  auto self = shared_from_this();
  // The source's copy dies at the commit point: once the process runs
  // here, or first if it holds a file lock the process needs (then a
  // failure to let it run here loses it).
  auto commit_source = [this] {
    if (source_committed_ || source_lost_) return;
    source_committed_ = true;
    pb::LinkFrame commit;
    commit.mutable_stream()->mutable_move_decision()->set_commit(true);
    link_->Send(commit);
  };
  arrival_->Go(commit_source, [this, self, commit_source](Status st) {
    committing_ = false;
    if (!moving_) return;
    if (!st.ok() && source_committed_) {
      FinishMove(Status::Error("letting it run at home failed after its copy at " + figures_.from() +
                               " was killed for its file locks: " + st.message()));
      return NodeLost("its copy coming home could not run");
    }
    if (!st.ok()) return TargetFailed(st.Prefixed("letting it run at home failed: "));
    // The commit point: the process runs here, the source's copy dies.
    went_home_ = true;
    deputy_away_ = false;
    commit_source();
    link_->set_handlers(nullptr, nullptr);
    link_->Close("moved home");
    client_->set_handlers(nullptr, nullptr);
    client_->Close("came home", false);
    record_->Arrived(figures_.to());
    figures_.set_total_ms(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - move_start_).count());
    if (frozen_at_ms_ > 0) figures_.set_frozen_ms(static_cast<double>(std::max<int64_t>(0, WallMs() - frozen_at_ms_)));
    spdlog::info("{} came home from {} in {:.1f} ms ({:.1f} ms frozen, {} bytes)", record_->gpid, figures_.from(),
                 figures_.total_ms(), figures_.frozen_ms(), figures_.bytes_sent());
    std::vector<int> signals;
    for (const pb::StreamFrame& f : held_) {
      if (f.has_signal()) signals.push_back(f.signal().signo());
    }
    held_.clear();  // input was checked empty; window sizes: not a terminal job
    auto on_home = std::move(on_home_);
    FinishMove(figures_);
    if (on_home) on_home(std::move(signals));
  });
}

void RemoteRun::DeputyBack(std::shared_ptr<ClientChannel> client) {
  client_ = std::move(client);
  deputy_away_ = false;
  StartClient();
  client_->Send(record_->DeputyStarted());
  spdlog::info("{}: its deputy is back", record_->gpid);
  std::string why = pending_abort_.empty() ? "its deputy came back" : pending_abort_;
  pending_abort_.clear();
  TargetFailed(Status::Error(why));  // the source resumes; held input and signals go to it
}

void RemoteRun::End() {
  if (ended_) return;
  ended_ = true;
  if (auto f = std::move(on_end_)) f();
}

}  // namespace roam
