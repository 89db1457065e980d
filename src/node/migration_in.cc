#include "node/migration_in.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>

#include <fmt/format.h>

#include "ckpt/kernel_features.h"
#include "ckpt/page_stage.h"
#include "ckpt/restore.h"
#include "common/file_util.h"
#include "node/file_identity.h"
#include "node/image_dir.h"
#include "node/move_engine.h"
#include "node/move_in_check.h"
#include "node/job_terminal.h"
#include "node/page_codec.h"
#include "wire/reply.h"

namespace roam {

MigrationIn::MigrationIn(asio::io_context& io, EngineWorker& engine, pb::SpawnRequest spawn,
                         std::shared_ptr<LinkSession> home, std::string image_dir, MoveFaults faults,
                         JobAddresses* addresses)
    : io_(io),
      engine_(engine),
      spawn_(std::move(spawn)),
      home_(std::move(home)),
      dir_(image_dir),
      faults_(faults),
      addresses_(addresses),
      tree_(std::make_shared<std::unique_ptr<RestoredTree>>()),
      receiver_(std::move(image_dir)) {}

MigrationIn::~MigrationIn() { ClosePipes(); }

void MigrationIn::Start(std::function<void(std::shared_ptr<GuestProcess>)> on_running, std::function<void()> on_end) {
  on_running_ = std::move(on_running);
  on_end_ = std::move(on_end);
  auto self = shared_from_this();
  home_->set_handlers(
      [this, self](pb::LinkFrame& f) {
        if (f.has_stream() && f.stream().has_move_go()) return Go();
      },
      [this, self](const std::string& why) { Abort(Status::Error(StatusCode::kUnavailable, "home link lost: " + why)); });
}

// ---- the image arrives -----------------------------------------------------------------

void MigrationIn::AcceptSource(std::shared_ptr<LinkSession> source, const pb::MoveIn& req, const std::string& node) {
  source_ = std::move(source);
  // Before anything is frozen: the files the tree uses must be here.
  std::vector<pb::FileIdentity> files(req.files().begin(), req.files().end());
  std::string path;
  std::string missing = CheckFileIdentities(files, node, nullptr, &path);
  if (!missing.empty()) {
    if (path.empty() || ++rechecks_ > kFileRechecks) return Abort(Status::Error(StatusCode::kMismatch, missing));
    auto self = shared_from_this();
    return AskSourceAgain(*source_, missing, path, [this, self, node](pb::LinkFrame& f) {
      if (f.has_request() && f.request().has_move_in()) return AcceptSource(source_, f.request().move_in(), node);
      if (f.has_reply() && !f.reply().error().empty()) {  // still so at the source: its reason
        source_gave_up_ = true;
        return Abort(ReplyStatus(f.reply()));
      }
      Abort(Status::Error(StatusCode::kInvalid, "unexpected frame from the source"));
    }, [this, self](const std::string& why) { Abort(Status::Error(StatusCode::kUnavailable, "lost the link to the source: " + why)); });
  }
  if (const uint64_t here = ProbeXsave().xcr0; (req.xcr0() & ~here) != 0) {
    return Abort(Status::Error(StatusCode::kMismatch,
                               fmt::format("the CPU of {} lacks XSAVE features the process may use (0x{:x} where it "
                                           "runs, 0x{:x} here)",
                                           node, req.xcr0(), here)));
  }
  Status st = receiver_.Open();
  if (!st.ok()) return Abort(st);
  auto self = shared_from_this();
  source_->set_handlers(
      [this, self](pb::LinkFrame& f) {
        if (f.has_precopy_pages()) return OnPrecopyPages(*f.mutable_precopy_pages());
        if (f.has_precopy_sync()) return OnPrecopySync();
        if (f.has_image_chunk()) return OnChunk(f.image_chunk());
        if (f.has_image_end()) return OnImageEnd(f.image_end());
        if (f.has_reply() && !f.reply().error().empty()) {  // the source gave up, and says why
          source_gave_up_ = true;
          return Abort(ReplyStatus(f.reply()));
        }
        Abort(Status::Error(StatusCode::kInvalid, "unexpected frame from the source"));
      },
      [this, self](const std::string& why) {
        if (!ready_) Abort(Status::Error(StatusCode::kUnavailable, "lost the link to the source: " + why));
      });
  if (req.precopy_pid() <= 0) {
    pb::LinkFrame ok;  // the first reply: send the image
    ok.mutable_reply();
    source_->Send(ok);
    return;
  }
  // Pre-copy: the future root is created now, with its PID, to take the
  // pages as they come.
  staging_ = std::make_shared<Staging>();
  staging_writer_ = std::make_unique<StagingWriter>(engine_, staging_);
  auto staging = staging_;
  pid_t pid = req.precopy_pid();
  engine_.Run<Status>(
      [staging, pid]() -> Status {
        Result<std::unique_ptr<PageStage>> stage = PageStage::Create(pid);
        if (!stage.ok()) return stage.status();
        staging->stage = std::move(*stage);
        return Status::Ok();
      },
      [this, self](Status st) {
        if (ended_) return;
        if (!st.ok()) spdlog::info("{}: no pre-copy ({})", gpid(), st.message());
        pb::LinkFrame ok;  // the first reply: pre-copy (or not), then the image
        ok.mutable_reply()->set_precopy(st.ok());
        ok.mutable_reply()->set_precopy_tree(st.ok());
        source_->Send(ok);
      });
}

void MigrationIn::OnPrecopyPages(pb::PrecopyPages& p) {
  if (ended_ || restoring_ || !staging_) return;
  if (faults_.At("target-staging") == MoveFaults::Action::kCut) {
    source_->Close("injected fault", false);
    return Abort(Status::Error(StatusCode::kUnavailable, "injected fault: cut at target-staging"));
  }
  staging_writer_->Post(p, source_);
}

void MigrationIn::OnPrecopySync() {
  auto self = shared_from_this();
  AnswerPrecopySync(staging_writer_.get(), source_, [this, self] { return ended_; });
}

void MigrationIn::OnChunk(const pb::ImageChunk& c) {
  if (ended_ || restoring_) return;
  if (faults_.At("target-receiving") == MoveFaults::Action::kCut) {
    source_->Close("injected fault", false);
    return Abort(Status::Error(StatusCode::kUnavailable, "injected fault: cut at target-receiving"));
  }
  Status st = receiver_.Write(c);
  if (!st.ok()) return Abort(st);
}

void MigrationIn::OnImageEnd(const pb::ImageEnd& e) {
  if (ended_ || restoring_) return;
  restoring_ = true;
  end_ = e;
  receiver_.CloseFiles();
  carried_ = CarriedFilesIn(dir_);  // the image dir goes once restored
  RestoreOptions options;
  options.defer_locks = true;  // the source's copy holds them until the commit (Go)
  options.own_session = true;  // never roamd's session and group
  if (spawn_.spec().tty()) {
    // A -t job: a new pseudo-terminal in the mode the old one had, holding
    // what was typed there and not read yet, at the fds of the old one.
    const pb::RunSpec& spec = spawn_.spec();
    const pb::Termios* mode = e.has_tty_mode() ? &e.tty_mode() : spec.has_termios() ? &spec.termios() : nullptr;
    const pb::WindowSize* size = e.has_tty_size() ? &e.tty_size() : spec.has_winsize() ? &spec.winsize() : nullptr;
    Result<JobPty> pty = OpenJobPty(spawn_.creds().uid(), mode, size);
    if (!pty.ok()) return Abort(pty.status());
    pty_master_ = pty->master;
    pty_slave_ = pty->slave;
    Status st = PutUnreadInput(pty_slave_, e.stdin_taken());
    if (!st.ok()) return Abort(st);
    options.inherited_fds = {{0, pty_slave_}, {1, pty_slave_}, {2, pty_slave_}};
  } else {
    // The process's stdio: fresh pipes to this roamd, at the fds that led
    // to the source's roamd.
    if (pipe2(in_, O_CLOEXEC) != 0 || pipe2(out_, O_CLOEXEC) != 0 || pipe2(err_, O_CLOEXEC) != 0) {
      return Abort(Status::Errno("pipe2"));
    }
    options.inherited_fds = {{0, in_[0]}, {1, out_[1]}, {2, err_[1]}};
  }
  // Its own address: up here before its sockets are made (the source took
  // it down once the tree was dumped).
  if (Status st = address_.Arrive(addresses_, gpid(), spawn_.spec().address(), dir_); !st.ok()) return Abort(st);
  // Made in its cgroup, if it has one (job_cgroup.h): its sockets are the
  // cgroup's from the start, so its hooks apply to them.
  if (addresses_) options.cgroup = addresses_->cgroup_dir(gpid());
  auto self = shared_from_this();
  auto tree = tree_;
  auto staging = staging_;
  const std::string dir = dir_;
  engine_.Run<Result<double>>(
      [tree, dir, options, staging]() mutable -> Result<double> {
        auto t0 = std::chrono::steady_clock::now();
        if (staging && staging->stage) {
          if (staging->error.ok()) {
            options.stage = staging->stage.get();
          } else {
            spdlog::warn("staging pre-copied pages failed: {}", staging->error.message());
            staging->stage.reset();  // its PID is free again; the image's kept pages are then missing
          }
        }
        Result<std::unique_ptr<RestoredTree>> r = RestoredTree::Restore(dir, options);
        if (staging) staging->stage.reset();  // taken by the restore, or killed now
        if (!r.ok()) return r.status();
        *tree = std::move(*r);
        return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      },
      [this, self](Result<double> r) { Restored(std::move(r)); });
}

void MigrationIn::Restored(Result<double> restore_ms) {
  RemoveImageDir(dir_);
  if (ended_) return;  // Abort() already queued the kill
  if (!restore_ms.ok()) return Abort(restore_ms.status().Prefixed("restore failed: "));
  // The child ends now live in the restored processes.
  for (int* fd : {&in_[0], &out_[1], &err_[1], &pty_slave_}) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
  if (faults_.At("target-restored") == MoveFaults::Action::kCut) {
    home_->Close("injected fault", false);
    return;  // the home link's close handler aborts
  }
  ready_ = true;
  pb::LinkFrame reply;
  reply.mutable_reply();
  source_->Send(reply);
  source_->set_handlers(nullptr, nullptr);
  source_->Close("restored");
  pb::LinkFrame ready;
  ready.mutable_stream()->mutable_move_ready()->set_restore_ms(*restore_ms);
  ready.mutable_stream()->mutable_move_ready()->set_frozen_at_ms(end_.frozen_at_ms());
  home_->Send(ready);
  spdlog::info("{}: restored here in {:.1f} ms, waiting for the home's go", gpid(), *restore_ms);
}

// ---- the home decides ------------------------------------------------------------------

void MigrationIn::Go() {
  if (ended_ || !ready_ || going_) return;
  going_ = true;
  // Frames after move_go are the process's (held stdin, signals): they wait
  // until the GuestProcess reads the link.
  home_->Pause();
  faults_.At("target-go");
  auto self = shared_from_this();
  LockAndRelease(
      engine_, tree_,
      [this, self](const std::string& why) { spdlog::info("{}: waits for its file locks: {}", gpid(), why); },
      [this, self](Result<pid_t> r) {
        if (!r.ok()) return Abort(r.status().Prefixed("release failed: "));
        address_.Running();  // its listeners are there: new connections come in
        SpawnedGuest g;
        g.pid = *r;
        g.tty = pty_master_ >= 0;
        g.stdin_fd = g.tty ? pty_master_ : in_[1];
        g.stdout_fd = g.tty ? pty_master_ : out_[0];
        g.stderr_fd = g.tty ? -1 : err_[0];
        in_[1] = out_[0] = err_[0] = pty_master_ = -1;
        auto guest = std::make_shared<GuestProcess>(io_, home_, spawn_, g);
        spdlog::info("{} runs here now (moved in)", gpid());
        if (on_running_) on_running_(guest);
        // A terminal's unread input is in the new one already.
        guest->PrependStdin(g.tty ? std::string() : end_.stdin_taken(), end_.stdin_pending(), end_.stdin_eof());
        home_->Resume();
        End();
      });
}

void MigrationIn::Abort(const Status& why) {
  if (ended_) return;
  ended_ = true;
  spdlog::warn("{}: incoming move failed: {}", gpid(), why.message());
  address_.Undo();
  auto tree = tree_;
  auto staging = staging_;
  // After a restore in flight on the engine thread, which may have written them.
  const std::vector<std::string> carried = carried_;
  const std::string id = gpid();
  engine_.Post([tree, staging, carried, id] {
    if (*tree) (*tree)->Kill();
    tree->reset();
    if (staging) staging->stage.reset();
    RemoveCarriedFiles(id, carried, "the move failed");
  });
  if (!restoring_) RemoveImageDir(dir_);  // else Restored() removes it
  if (source_ && !source_->closed()) {
    pb::LinkFrame reply;
    SetReplyError(reply.mutable_reply(), why);
    source_->Send(reply);
    source_->set_handlers(nullptr, nullptr);
    source_->Close("move failed");
  }
  if (!home_->closed()) {
    pb::LinkFrame err;
    err.mutable_stream()->set_error(why.message());
    err.mutable_stream()->set_code(static_cast<int>(why.code()));
    err.mutable_stream()->set_error_from_source(source_gave_up_);
    home_->Send(err);
    home_->set_handlers(nullptr, nullptr);
    home_->Close("move failed");
  }
  ClosePipes();
  End();
}

void MigrationIn::ClosePipes() {
  for (int* fd : {&in_[0], &in_[1], &out_[0], &out_[1], &err_[0], &err_[1], &pty_master_, &pty_slave_}) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
}

void MigrationIn::End() {
  if (auto f = std::move(on_end_)) f();
}

}  // namespace roam
