#include "node/remote_run.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <chrono>

namespace roam {

namespace {
constexpr size_t kClientHighWater = 256 << 10;
}

RemoteRun::RemoteRun(std::shared_ptr<ClientChannel> client, std::shared_ptr<LinkChannel> link,
                     HomeProcess* record)
    : client_(std::move(client)), link_(std::move(link)), record_(record) {}

void RemoteRun::InstallLinkHandlers() {
  auto self = shared_from_this();
  link_->set_handlers([this, self](pb::LinkFrame& f) { FromLink(f); },
                      [this, self](const std::string& why) {
                        if (exit_seen_) return;
                        if (moving_) return SourceLost(why);
                        NodeLost("lost the connection to " + record_->where + " (" + why + ")");
                      });
}

void RemoteRun::Start(std::function<void()> on_end) {
  on_end_ = std::move(on_end);
  auto self = shared_from_this();
  InstallLinkHandlers();
  client_->set_on_drained([this, self] { link_->Resume(); });
  client_->Start([this, self](pb::StreamFrame& f) { FromClient(f); },
                 [this, self](const std::string&) {
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
    case pb::StreamFrame::kStdinData:
    case pb::StreamFrame::kStdinEof:
    case pb::StreamFrame::kSignal:
    case pb::StreamFrame::kWinsize: {
      if (moving_) {
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
  switch (s.kind_case()) {
    case pb::StreamFrame::kStats:
      record_->stats = s.stats();
      return;
    case pb::StreamFrame::kMoveFrozen:
      if (!moving_) return;
      frozen_ = true;
      figures_.set_bytes_sent(s.move_frozen().bytes_sent());
      figures_.set_dump_ms(s.move_frozen().dump_ms());
      return MaybeCommit();
    case pb::StreamFrame::kMoveFailed:
      if (!moving_) return;
      if (target_) {
        target_->set_handlers(nullptr, nullptr);
        target_->Close("move failed", false);
      }
      return FinishMove(Status::Error(s.move_failed()));
    case pb::StreamFrame::kExit:
      exit_seen_ = true;
      client_->Send(s);
      client_->Close("exit sent");
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
  if (moving_) {
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
}  // namespace

void RemoteRun::Move(const std::string& to, const std::string& address, std::shared_ptr<LinkChannel> target,
                     MoveFaults faults, std::function<void(Result<pb::MigrationFigures>)> done) {
  moving_ = true;
  frozen_ = ready_ = source_lost_ = false;
  target_ = std::move(target);
  faults_ = faults;
  move_done_ = std::move(done);
  move_start_ = std::chrono::steady_clock::now();
  figures_.Clear();
  figures_.set_gpid(record_->gpid);
  figures_.set_from(record_->where);
  figures_.set_to(to);
  figures_.set_rounds(1);
  auto self = shared_from_this();
  target_->set_handlers([this, self](pb::LinkFrame& f) { FromTarget(f); },
                        [this, self](const std::string& why) { TargetFailed("lost the link to " + figures_.to() + ": " + why); });
  move_timer_ = std::make_unique<asio::steady_timer>(link_->socket().get_executor());
  move_timer_->expires_after(kMoveTimeout);
  move_timer_->async_wait([this, self](asio::error_code ec) {
    if (!ec && moving_) TargetFailed("the move did not finish in " + std::to_string(kMoveTimeout.count()) + " s");
  });
  pb::LinkFrame order;
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
  if (s.kind_case() == pb::StreamFrame::kError) TargetFailed(figures_.to() + ": " + s.error());
}

void RemoteRun::SourceLost(const std::string& why) {
  if (!moving_ || source_lost_) return;
  // The source's roamd (and with it the frozen copy) is gone. If the
  // target holds a complete copy, it carries on; else the process is lost.
  source_lost_ = true;
  spdlog::warn("{}: lost {} during the move ({})", record_->gpid, figures_.from(), why);
  if (ready_) return MaybeCommit();
  auto self = shared_from_this();
  move_timer_->expires_after(kSourceLostGrace);
  move_timer_->async_wait([this, self](asio::error_code ec) {
    if (!ec && moving_) TargetFailed("the target got no complete image");
  });
}

void RemoteRun::TargetFailed(const std::string& why) {
  if (!moving_) return;
  if (target_) {
    target_->set_handlers(nullptr, nullptr);
    target_->Close("move failed", false);
  }
  if (source_lost_) {
    FinishMove(Status::Error("node " + figures_.from() + " was lost during the move, and " + why));
    return NodeLost("lost during a move to " + figures_.to());
  }
  // The source still holds the frozen copy: it resumes.
  pb::LinkFrame abort;
  abort.mutable_stream()->mutable_move_decision()->set_commit(false);
  link_->Send(abort);
  FinishMove(Status::Error(why));
}

void RemoteRun::MaybeCommit() {
  if (!moving_ || !ready_ || !(frozen_ || source_lost_)) return;
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
  record_->where = figures_.to();
  record_->nmig += 1;
  figures_.set_total_ms(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - move_start_).count());
  if (frozen_at_ms_ > 0) figures_.set_frozen_ms(static_cast<double>(std::max<int64_t>(0, WallMs() - frozen_at_ms_)));
  spdlog::info("{} moved {} -> {} in {:.1f} ms ({:.1f} ms frozen, {} bytes)", record_->gpid, figures_.from(),
               figures_.to(), figures_.total_ms(), figures_.frozen_ms(), figures_.bytes_sent());
  FinishMove(figures_);
}

void RemoteRun::FinishMove(Result<pb::MigrationFigures> r) {
  if (!moving_) return;
  moving_ = false;
  target_ = nullptr;
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

void RemoteRun::End() {
  if (ended_) return;
  ended_ = true;
  if (auto f = std::move(on_end_)) f();
}

}  // namespace roam
