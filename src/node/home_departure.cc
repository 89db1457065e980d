#include "node/home_departure.h"

#include <signal.h>
#include <sys/resource.h>
#include <spdlog/spdlog.h>

#include "ckpt/checkpoint.h"
#include "common/file_util.h"
#include "common/proc_status.h"
#include "node/file_identity.h"
#include "node/home_arrival.h"
#include "node/image_sender.h"
#include "node/job_terminal.h"
#include "node/move_engine.h"
#include "node/move_in_check.h"
#include "node/precopy_sender.h"
#include "wire/reply.h"

namespace roam {

namespace {

constexpr auto kMoveTimeout = std::chrono::seconds(300);
constexpr auto kDeputyTimeout = std::chrono::seconds(10);

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double MsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

HomeDeparture::HomeDeparture(asio::io_context& io, EngineWorker& engine, LinkPool& links,
                             HomeProcess* record, std::shared_ptr<LinkSession> adopt, DepartureConfig config)
    : io_(io),
      engine_(engine),
      links_(links),
      rec_(record),
      adopt_(std::move(adopt)),
      cfg_(std::move(config)),
      tree_(NewFrozenHolder()),
      codec_(std::make_shared<CodecChooser>(cfg_.codec)),
      address_(cfg_.addresses, rec_->gpid, rec_->spawn.spec().address()),
      backlog_(io),
      timer_(io) {}

HomeDeparture::~HomeDeparture() = default;

// ---- freeze -> dump -> stream ---------------------------------------------------------

namespace {

// The deputy it becomes may need more fds than the process allows itself
// (`ulimit -n 5`): the exec raises the soft limit (Tracee::ExecProgram),
// but a hard one only a process with CAP_SYS_RESOURCE may raise, and the
// move would fail only at its end. Refused now, before anything is frozen.
Status RoomForDeputy(pid_t pid, const InPlaceFallback& deputy) {
  const std::string proc = "/proc/" + std::to_string(pid);
  Result<std::string> limits = ReadFile(proc + "/limits");
  Result<std::string> status = ReadFile(proc + "/status");
  if (!limits.ok() || !status.ok()) return Status::Ok();  // gone: the move says so
  Result<std::vector<ProcLimit>> l = ParseProcLimits(*limits);
  Result<ProcStatus> s = ParseProcStatus(*status);
  if (!l.ok() || !s.ok() || l->size() <= RLIMIT_NOFILE) return Status::Ok();
  const uint64_t hard = (*l)[RLIMIT_NOFILE].hard;
  constexpr int kCapSysResource = 24;
  if (hard >= deputy.min_open_files || (s->cap_eff >> kCapSysResource) & 1) return Status::Ok();
  return Status::Error(StatusCode::kCantMove, "pid " + std::to_string(pid) + " may open " + std::to_string(hard) +
                                                  " files at most (ulimit -n), its deputy needs " +
                                                  std::to_string(deputy.min_open_files));
}

}  // namespace

void HomeDeparture::Start(Done done, std::function<void()> on_end) {
  done_ = std::move(done);
  on_end_ = std::move(on_end);
  start_ = std::chrono::steady_clock::now();
  figures_.set_gpid(rec_->gpid);
  figures_.set_from(rec_->where);
  figures_.set_to(cfg_.to);
  meter_.Begin(rec_->gpid, rec_->where, cfg_.to, start_);
  meter_.SetPhase("checking the target");
  figures_.set_rounds(1);
  auto self = shared_from_this();
  adopt_->set_handlers(
      [this, self](pb::LinkFrame& f) {
        if (!f.has_stream()) return;
        if (f.stream().has_move_ready()) {
          ready_ = true;
          figures_.set_restore_ms(f.stream().move_ready().restore_ms());
          return MaybeCommit();
        }
        if (f.stream().kind_case() == pb::StreamFrame::kError) Fail(WireStatus(f.stream().code(), cfg_.to + ": " + f.stream().error()));
      },
      [this, self](const std::string& why) {
        if (execed_) return Lost("lost the link to " + cfg_.to + " before its deputy started: " + why);
        Fail(Status::Error(StatusCode::kUnavailable, "lost the link to " + cfg_.to + ": " + why));
      });
  timer_.expires_after(kMoveTimeout);
  timer_.async_wait([this, self](asio::error_code ec) {
    if (!ec) Fail(Status::Error(StatusCode::kUnavailable, "the move did not finish in " + std::to_string(kMoveTimeout.count()) + " s"));
  });
  spdlog::info("{}: leaving home for {}", rec_->gpid, cfg_.to);
  if (Status room = RoomForDeputy(rec_->pid, DeputyProgram(cfg_.roam_path, cfg_.control_socket, rec_->gpid));
      !room.ok()) {
    return Fail(room);
  }
  // The target first checks it has the files the tree uses; nothing is
  // frozen until it says so.
  Result<std::vector<pb::FileIdentity>> files = TreeFileIdentities(rec_->pid, &carried_);
  if (!files.ok()) return Fail(files.status());
  files_sent_ = std::move(*files);
  links_.Open(cfg_.address,
              [this, self](Result<std::shared_ptr<LinkSession>> r, const std::string&) {
                if (ended_) {
                  if (r.ok()) (*r)->Close("late", false);
                  return;
                }
                if (!r.ok()) return Fail(Status::Error(StatusCode::kUnavailable, "cannot reach " + cfg_.to + ": " + r.status().message()));
                image_link_ = *r;
                image_link_->set_handlers(
                    [this, self](pb::LinkFrame& f) {
                      if (f.has_precopy_synced()) return precopy_ ? precopy_->Synced() : void();
                      if (!f.has_reply()) return Fail(Status::Error(StatusCode::kInvalid, "unexpected frame from " + cfg_.to));
                      if (!f.reply().error().empty()) {
                        if (!checked_ && RelistIfStale(f.reply(), *image_link_, rec_->gpid, rec_->pid, &files_sent_,
                                                       &relists_)) {
                          return;
                        }
                        return Fail(ReplyStatus(f.reply()).Prefixed(cfg_.to + ": "));
                      }
                      if (!checked_) {  // the first answer: the files are there
                        checked_ = true;
                        precopy_tree_ = f.reply().precopy_tree();
                        return f.reply().precopy() ? PreCopy() : Settle();
                      }
                      restored_ = true;
                      MaybeCommit();
                    },
                    [this, self](const std::string& why) {
                      if (!restored_) Fail(Status::Error(StatusCode::kUnavailable, "lost the link to " + cfg_.to + ": " + why));
                    });
                image_link_->Send(MoveInRequest(rec_->gpid, rec_->pid, files_sent_));
              });
}

void HomeDeparture::PreCopy() {
  auto self = shared_from_this();
  precopy_ = std::make_shared<PrecopySender>(engine_, image_link_, rec_->pid, precopy_tree_, cfg_.faults, codec_);
  meter_.SetPhase("pre-copy");
  precopy_->Start([this, self](Status st) {
    if (ended_) return;
    if (!st.ok()) return Fail(st);
    Settle();
  });
}

void HomeDeparture::Settle() {
  address_.Freezing(rec_->pid);
  auto self = shared_from_this();
  backlog_.Run(
      rec_->pid, rec_->gpid, [this, self](const std::string& what) { meter_.SetPhase("waiting for it to take " + what); },
      [this, self] {
        if (!ended_) Freeze();
      });
}

void HomeDeparture::Freeze() {
  auto self = shared_from_this();
  // Its fds 0-2 (the user's terminal, pipes or files) stay here with its
  // deputy; the copy on the target gets pipes to the target's roamd.
  meter_.SetPhase("frozen");
  DumpOptions options;
  options.stdio_stays = true;
  // A -t job gets a terminal of its own there, and leads its session.
  options.root_leads_session = rec_->spawn.spec().tty();
  // The image goes on the link as the dump reads it.
  sender_ = std::make_shared<ImageSender>(engine_.io(), image_link_, cfg_.faults, codec_);
  sender_->Start([this, self](Status st) {
    figures_.set_bytes_sent(sender_->bytes_sent() + (precopy_ ? precopy_->bytes_sent() : 0));
    figures_.set_precopy_bytes(precopy_ ? precopy_->memory_sent() : 0);
    figures_.set_bytes_compressed(sender_->bytes_compressed() + (precopy_ ? precopy_->bytes_compressed() : 0));
    figures_.set_rounds(1 + (precopy_ ? precopy_->rounds() : 0));
    if (!st.ok()) Fail(st);
  });
  FreezeAndDump(
      engine_, rec_->pid, sender_->pipe(), tree_, [this, self](Result<double> r) { Dumped(std::move(r)); }, options,
      precopy_ ? precopy_->holder() : nullptr);
}

void HomeDeparture::Dumped(Result<double> dump_ms) {
  if (ended_) return;
  if (!dump_ms.ok()) return Fail(dump_ms.status());
  figures_.set_dump_ms(*dump_ms);
  frozen_at_ms_ = WallMs() - static_cast<int64_t>(*dump_ms);
  // What the process wrote before the freeze is in the user's terminal or
  // pipe already, and what it has not read is still there for its deputy.
  // Its own address goes with it: the target puts it up before restoring.
  address_.Leave();
  if (cfg_.faults.At("source-frozen") == MoveFaults::Action::kCut) return Fail(Status::Error(StatusCode::kUnavailable, "injected fault: cut at source-frozen"));
  sender_->EndOfImage([this](pb::ImageEnd* e) {
    e->set_dump_ms(figures_.dump_ms());
    e->set_frozen_at_ms(frozen_at_ms_);
    // A -t job: the user's terminal's mode and size for its new pty there,
    // and what was typed and not read, which its deputy would otherwise
    // read (raw) and send to be processed a second time.
    if (!rec_->spawn.spec().tty()) return;
    Result<int> tty = TerminalOf(rec_->pid);
    if (!tty.ok() || *tty < 0) return;
    (void)RecordTerminal(*tty, e);
    if (Result<std::string> typed = TakeUnreadInput(*tty); typed.ok()) {
      terminal_input_ = *typed;
      e->set_stdin_taken(*typed);
    }
    close(*tty);
  });
}

// ---- the commit: the process becomes its own deputy -----------------------------------

pb::MoveProgress HomeDeparture::progress() {
  const auto now = std::chrono::steady_clock::now();
  pb::MoveProgress r;
  r.set_rounds((precopy_ ? precopy_->rounds() : 0) + (sender_ ? 1 : 0));
  r.set_bytes_sent((precopy_ ? precopy_->bytes_sent() : 0) + (sender_ ? sender_->bytes_sent() : 0));
  meter_.Report(r, now);
  return meter_.Snapshot(now);
}

void HomeDeparture::MaybeCommit() {
  if (ended_ || execed_ || !restored_ || !ready_) return;
  execed_ = true;  // from here no resume: the exec is under way
  cfg_.faults.At("home-committing");
  if (image_link_) {
    image_link_->set_handlers(nullptr, nullptr);
    image_link_->Close("image delivered");
  }
  auto self = shared_from_this();
  auto tree = tree_;
  const InPlaceFallback deputy = DeputyProgram(cfg_.roam_path, cfg_.control_socket, rec_->gpid);
  engine_.Run<Status>(
      [tree, deputy]() -> Status {
        if (!*tree) return Status::Error("nothing frozen");
        Status st = (*tree)->ExecRoot(deputy.argv, deputy.env, deputy.min_open_files);
        if (st.ok()) (*tree)->RemoveCarried();  // its System V objects went with it
        if (st.ok()) tree->reset();  // the root is the deputy now; the rest was killed
        return st;
      },
      [this, self, gpid = rec_->gpid](Status st) {
        // Even when the deputy connected (and ended this move) before this
        // ran: the files skipped then stayed at home (POSIX shared memory,
        // seen 2026-12-06).
        if (st.ok()) RemoveCarriedFiles(gpid, carried_, "it went with the process");
        if (ended_) return;
        if (!st.ok()) {
          execed_ = false;  // still frozen, untouched: it can resume
          return Fail(st.Prefixed("could not start its deputy: "));
        }
        rec_->pidfd.reset();  // the deputy holds the PID now; RemoteRun follows it
        timer_.expires_after(kDeputyTimeout);
        auto me = shared_from_this();
        timer_.async_wait([this, me](asio::error_code ec) {
          if (!ec) Lost("its deputy did not connect in " + std::to_string(kDeputyTimeout.count()) + " s");
        });
      });
}

void HomeDeparture::DeputyArrived(std::shared_ptr<ClientChannel> client) {
  if (ended_ || !execed_) {
    pb::StreamFrame err;
    err.set_error("no move of " + rec_->gpid + " is waiting for its deputy");
    client->Send(err);
    client->Close("refused");
    return;
  }
  cfg_.faults.At("target-go");
  // The deputy is the session's client from now on; the adopt link is its
  // link to the guest. It holds the PID (it may connect before the exec's
  // own callback has run).
  rec_->pidfd.reset();
  rec_->Arrived(cfg_.to);
  rec_->stats.set_state("running");
  rec_->remote = std::make_shared<RemoteRun>(client, adopt_, rec_);
  client->Send(rec_->DeputyStarted());
  pb::LinkFrame go;
  go.mutable_stream()->set_move_go(true);
  adopt_->Send(go);
  rec_->remote->Start(cfg_.on_session_end);
  for (int sig : held_signals_) rec_->remote->Signal(sig);
  figures_.set_total_ms(MsSince(start_));
  figures_.set_frozen_ms(static_cast<double>(std::max<int64_t>(0, WallMs() - frozen_at_ms_)));
  spdlog::info("{} left home for {} in {:.1f} ms ({:.1f} ms frozen, {} bytes)", rec_->gpid, cfg_.to,
               figures_.total_ms(), figures_.frozen_ms(), figures_.bytes_sent());
  ended_ = true;
  Finish(figures_);
}

// ---- failures --------------------------------------------------------------------------

void HomeDeparture::Fail(const Status& why) {
  if (ended_) return;
  if (execed_) return;  // the exec is under way: its outcome decides
  ended_ = true;
  spdlog::warn("{}: leaving home for {} failed: {}; it runs on at home", rec_->gpid, cfg_.to, why.message());
  if (precopy_) {
    precopy_->Cancel();
    DropPreCopy(engine_, precopy_->holder());
  }
  // A dump waiting for room in the pipe fails at once, so the engine is
  // free to resume the tree.
  if (sender_) sender_->Cancel();
  for (auto* l : {&adopt_, &image_link_}) {
    if (*l) {
      (*l)->set_handlers(nullptr, nullptr);
      (*l)->Close("move failed", false);
    }
  }
  auto self = shared_from_this();
  if (!terminal_input_.empty()) {  // back where it was typed
    Result<int> tty = TerminalOf(rec_->pid);
    Status st = tty.ok() && *tty >= 0 ? PutUnreadInput(*tty, terminal_input_) : Status::Error("no terminal");
    if (tty.ok() && *tty >= 0) close(*tty);
    if (!st.ok()) spdlog::warn("{}: {} bytes of its input lost: {}", rec_->gpid, terminal_input_.size(), st.message());
  }
  address_.Back();
  LetGo(engine_, tree_, /*kill=*/false, [this, self, why] {
    for (int sig : held_signals_) ::kill(rec_->pid, sig);
    if (cfg_.on_resumed) cfg_.on_resumed();
    Finish(why);
  });
}

void HomeDeparture::Lost(const std::string& why) {
  if (ended_) return;
  ended_ = true;
  spdlog::error("{}: lost while leaving home: {}", rec_->gpid, why);
  adopt_->set_handlers(nullptr, nullptr);
  adopt_->Close("move failed", false);  // the target kills its held copy
  ::kill(rec_->pid, SIGKILL);           // the deputy, if it runs: the shell sees the process die
  const std::string gpid = rec_->gpid;
  auto end_session = cfg_.on_session_end;
  Finish(Status::Error(StatusCode::kUnavailable, gpid + " was lost while leaving home: " + why));
  if (end_session) end_session();  // the record goes; `rec_` is not used after this
}

void HomeDeparture::Finish(Result<pb::MigrationFigures> r) {
  backlog_.Cancel();
  address_.Done();
  timer_.cancel();
  if (auto d = std::move(done_)) d(std::move(r));
  if (auto e = std::move(on_end_)) e();
}

}  // namespace roam
