#include "node/home_arrival.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>

#include "ckpt/image.h"
#include "common/file_util.h"
#include "node/file_identity.h"
#include "node/image_dir.h"
#include "node/move_engine.h"
#include "node/move_in_check.h"
#include "node/job_terminal.h"
#include "wire/reply.h"
#include "common/terminal.h"
#include "node/page_codec.h"

namespace roam {

namespace {
constexpr char kLastPid[] = "/proc/sys/kernel/ns_last_pid";
}  // namespace

InPlaceFallback DeputyProgram(const std::string& roam_path, const std::string& control_socket,
                              const std::string& gpid) {
  InPlaceFallback p;
  p.argv = {roam_path, "run"};
  p.env = {"ROAM_TAKE_OVER=" + gpid, "ROAM_SOCKET=" + control_socket, "PATH=/usr/local/bin:/usr/bin:/bin"};
  // Its own fds: 0-2, its link to roamd, a pipe, a terminal's, and a few
  // to spare. A process that lowered its limit below that (`ulimit -n 5`)
  // left a deputy that died at its first pipe, and the process lost, until
  // 2026-12-07: now the exec gets the room or the move fails before it.
  p.min_open_files = 16;
  return p;
}

HomeArrival::HomeArrival(EngineWorker& engine, HomeProcess* record, ArrivalConfig config)
    : engine_(engine),
      rec_(record),
      cfg_(std::move(config)),
      receiver_(cfg_.image_dir),
      tree_(std::make_shared<std::unique_ptr<RestoredTree>>()) {}

HomeArrival::~HomeArrival() {
  if (terminal_ >= 0) close(terminal_);
}

// ---- the image arrives -----------------------------------------------------------------

void HomeArrival::AcceptSource(std::shared_ptr<LinkSession> source, const pb::MoveIn& req, const std::string& node) {
  source_ = std::move(source);
  std::vector<pb::FileIdentity> files(req.files().begin(), req.files().end());
  std::string path;
  std::string missing = CheckFileIdentities(files, node, nullptr, &path);
  if (!missing.empty()) {
    if (path.empty() || ++rechecks_ > kFileRechecks) return Fail(missing);
    auto self = shared_from_this();
    return AskSourceAgain(*source_, missing, path, [this, self, node](pb::LinkFrame& f) {
      if (ended_) return;
      if (f.has_request() && f.request().has_move_in()) return AcceptSource(source_, f.request().move_in(), node);
      if (f.has_reply() && !f.reply().error().empty()) return Fail(ReplyStatus(f.reply()));  // its reason
      Fail("unexpected frame from the source");
    }, [this, self](const std::string& why) { Fail("lost the link to the source: " + why); });
  }
  Status st = receiver_.Open();
  if (!st.ok()) return Fail(st.message());
  auto self = shared_from_this();
  source_->set_handlers(
      [this, self](pb::LinkFrame& f) {
        if (ended_ || have_image_ || settling_) return;
        if (f.has_precopy_pages()) return OnPrecopyPages(*f.mutable_precopy_pages());
        if (f.has_precopy_sync()) return OnPrecopySync();
        if (f.has_image_chunk()) {
          if (cfg_.faults.At("target-receiving") == MoveFaults::Action::kCut) {
            source_->Close("injected fault", false);
            return Fail("injected fault: cut at target-receiving");
          }
          Status st = receiver_.Write(f.image_chunk());
          if (!st.ok()) Fail(st.message());
          return;
        }
        if (f.has_image_end()) return OnImageEnd(f.image_end());
        // The source gave up (its dump failed: a busy socket ...), and says why.
        if (f.has_reply() && !f.reply().error().empty()) return Fail(ReplyStatus(f.reply()));
        Fail("unexpected frame from the source");
      },
      [this, self](const std::string& why) {
        if (!have_image_) Fail("lost the link to the source: " + why);
      });
  // Pre-copy, into the deputy: it reserves room for the process's memory,
  // which it keeps until it becomes the process (docs/MIGRATION.md).
  if (req.precopy_pid() == rec_->pid && req.precopy_span() > 0 && cfg_.reserve) {
    reserve_len_ = req.precopy_span() * 2 + (1ULL << 30);  // address space only: pieces align to 2 MiB
    reserving_ = true;
    return cfg_.reserve(reserve_len_);
  }
  ReplyPrecopy(false);
}

void HomeArrival::Reserved(uint64_t at) {
  if (ended_ || !reserving_) return;
  reserving_ = false;
  if (at == 0) {
    spdlog::info("{}: no pre-copy (its deputy could not reserve {} MiB)", rec_->gpid, reserve_len_ >> 20);
    return ReplyPrecopy(false);
  }
  staging_ = std::make_shared<Staging>();
  staging_->stage = PageStage::Adopt(rec_->pid, at, reserve_len_);
  staging_writer_ = std::make_unique<StagingWriter>(engine_, staging_);
  ReplyPrecopy(true);
}

void HomeArrival::ReplyPrecopy(bool precopy) {
  pb::LinkFrame ok;  // the first reply: pre-copy (or not), then the image
  ok.mutable_reply()->set_precopy(precopy);
  ok.mutable_reply()->set_precopy_tree(precopy);
  source_->Send(ok);
}

void HomeArrival::OnPrecopyPages(pb::PrecopyPages& p) {
  if (!staging_writer_) return Fail("pages pre-copied that were not asked for");
  if (cfg_.faults.At("target-staging") == MoveFaults::Action::kCut) {
    source_->Close("injected fault", false);
    return Fail("injected fault: cut at target-staging");
  }
  staging_writer_->Post(p, source_);
}

void HomeArrival::OnPrecopySync() {
  auto self = shared_from_this();
  AnswerPrecopySync(staging_writer_.get(), source_, [this, self] { return ended_; });
}

void HomeArrival::OnImageEnd(const pb::ImageEnd& e) {
  receiver_.CloseFiles();
  frozen_at_ms_ = e.frozen_at_ms();
  // A -t job takes its terminal's mode home, and what was typed on it and
  // not read, into the user's terminal (its deputy's, held meanwhile).
  if (rec_->spawn.spec().tty()) {
    Result<int> tty = TerminalOf(rec_->pid);
    if (tty.ok() && *tty >= 0) {
      terminal_ = *tty;
      if (e.has_tty_mode()) terminal_mode_ = e.tty_mode();
      terminal_input_ = e.stdin_taken() + e.stdin_pending();
    }
  }
  // Input the process was given but has not read cannot be put back into
  // the user's pipe or file, where it will read from at home.
  const size_t unread = e.stdin_taken().size() + e.stdin_pending().size();
  if (unread > 0 && terminal_ < 0) {
    return Fail("it has " + std::to_string(unread) + " bytes of input it has not read yet; it can come home once it has");
  }
  if (!staging_) return ImageWhole();
  // The image keeps out what was pre-copied and not written since: those
  // pages are in the deputy, which must have taken every one (the engine
  // thread wrote them, in order, before this runs).
  settling_ = true;
  auto self = shared_from_this();
  auto staging = staging_;
  engine_.Run<Result<std::vector<StagedPiece>>>(
      [staging]() -> Result<std::vector<StagedPiece>> {
        if (!staging->error.ok()) return staging->error;
        return staging->stage ? staging->stage->pieces() : std::vector<StagedPiece>();
      },
      [this, self](Result<std::vector<StagedPiece>> pieces) {
        if (ended_) return;
        if (!pieces.ok()) return Fail("the pre-copied pages: " + pieces.status().message());
        staged_ = std::move(*pieces);
        ImageWhole();
      });
}

void HomeArrival::ImageWhole() {
  Result<Image> image = LoadImage(image_dir(), /*verify_payloads=*/false);
  if (!image.ok()) return Fail("the image: " + image.status().message());
  // A tree: the deputy's seed makes the other processes with their PIDs,
  // which must be free here (taken ones are refused now, not half-way).
  tree_pids_.clear();
  std::vector<pid_t> others;
  for (const pb::ProcessImage& p : image->procs) {
    if (p.pid() != rec_->pid) others.push_back(p.pid());
    for (const pb::Zombie& z : p.zombies()) others.push_back(z.pid());  // made again, to be waited for
    for (const pb::ThreadImage& t : p.threads()) others.push_back(t.tid());  // made by the rebuild
  }
  for (pid_t pid : others) {
    if (access(("/proc/" + std::to_string(pid)).c_str(), F_OK) == 0) {
      return Fail("pid " + std::to_string(pid) + " of its tree is taken here");
    }
    tree_pids_.insert(pid);
  }
  // The seed reads the image as the user (it runs as the user).
  const uid_t uid = rec_->creds.uid();
  const gid_t gid = rec_->creds.gid();
  Result<std::vector<std::string>> names = ListImageFiles(image_dir());
  if (!names.ok()) return Fail(names.status().message());
  for (const std::string& n : *names) {
    if (chown((image_dir() + "/" + n).c_str(), uid, gid) != 0) return Fail("chown " + n + ": " + strerror(errno));
  }
  if (chown(image_dir().c_str(), uid, gid) != 0) return Fail("chown " + image_dir() + ": " + strerror(errno));
  // Its own address is up before the deputy opens its sockets.
  // (An ordinary user's deputy may not repair a TCP connection: it opens
  // the socket, and the restorer, root, places it. ckpt/files.h.)
  const std::string& address = rec_->spawn.spec().address();
  // Its cgroup (job_cgroup.h) goes beside the deputy's, in the user's
  // session, and the deputy goes in before it makes the tree's sockets and
  // processes: the cgroup's hooks apply to sockets made in it.
  if (Status st = address_.Arrive(cfg_.addresses, rec_->gpid, address, image_dir(), rec_->pid); !st.ok()) {
    return Fail(st.message());
  }
  if (cfg_.addresses) {
    if (Status st = EnterCgroup(cfg_.addresses->cgroup_dir(rec_->gpid), {rec_->pid}); !st.ok()) {
      return Fail(st.message());
    }
  }
  have_image_ = true;
  carried_ = CarriedFilesIn(image_dir());  // the seed writes them; gone if the move fails
  // The image is here: the source hands over (move_frozen) and from then
  // on obeys the home only.
  pb::LinkFrame reply;
  reply.mutable_reply();
  source_->Send(reply);
  source_->set_handlers(nullptr, nullptr);
  source_->Close("image delivered");
  if (cfg_.on_image) cfg_.on_image();
}

// ---- the deputy, now a seed, is rebuilt ------------------------------------------------

void HomeArrival::Rebuild(const pb::SeedReady& s) {
  if (ended_ || seeded_) return;
  seeded_ = rebuild_started_ = rebuilding_ = true;
  TakeSeed(s);
  auto self = shared_from_this();
  auto tree = tree_;
  const std::string dir = image_dir();
  const pid_t pid = rec_->pid;
  InPlaceSeed seed = seed_;
  InPlaceFallback fallback = DeputyProgram(cfg_.roam_path, cfg_.control_socket, rec_->gpid);
  auto staging = staging_;
  engine_.Run<Result<double>>(
      [tree, dir, pid, seed, fallback, staging]() mutable -> Result<double> {
        auto t0 = std::chrono::steady_clock::now();
        if (staging && staging->stage) seed.staged = staging->stage->pieces();  // the deputy's, moved into place
        RestoreOptions options;
        options.verify_payloads = false;  // it came over the authenticated link, into our tmpfs
        options.defer_locks = true;       // the source's copy holds them until the commit (Go)
        // Threads get their TIDs as the seed's children got their PIDs
        // (NextPid), and the node's count goes back where it was after.
        int last_before = 0;
        options.ask_pid = [&last_before](pid_t tid) {
          if (last_before == 0) {
            Result<std::string> last = ReadFile(kLastPid);
            if (last.ok()) last_before = atoi(last->c_str());
          }
          return WriteFileInPlace(kLastPid, std::to_string(tid - 1));
        };
        Result<std::unique_ptr<RestoredTree>> r = RestoredTree::RestoreInPlace(dir, pid, seed, fallback, options);
        if (last_before != 0) (void)WriteFileInPlace(kLastPid, std::to_string(last_before));
        if (!r.ok()) return r.status();  // it execs the deputy again
        *tree = std::move(*r);
        return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      },
      [this, self](Result<double> r) {
        rebuilding_ = false;
        RemoveImageDir(image_dir());
        if (ended_) return;  // Abort() queued what undoes it
        if (!r.ok()) return Fail("restore at home failed: " + r.status().message());
        if (cfg_.faults.At("target-restored") == MoveFaults::Action::kCut) {
          return Fail("injected fault: cut at target-restored");
        }
        spdlog::info("{}: rebuilt at home in {:.1f} ms, held", rec_->gpid, *r);
        if (cfg_.on_ready) cfg_.on_ready(*r, frozen_at_ms_);
      });
}

void HomeArrival::SendBack(const pb::SeedReady& s) {
  if (seeded_) return;
  seeded_ = true;
  TakeSeed(s);
  if (!ended_) return Abort();
  PostUndo();  // called off before the seed reported: it waits all the same
}

void HomeArrival::TakeSeed(const pb::SeedReady& s) {
  RestorePidCount();  // the seed made the tree, or gave up
  seed_.base = s.base();
  seed_.helper = s.helper();
  seed_.pages_fd = s.pages_fd();
  seed_.children.clear();
  for (const pb::SeedChild& c : s.children()) seed_.children.push_back({c.pid(), c.helper(), c.pages_fd()});
}

Status HomeArrival::NextPid(pid_t pid) {
  if (ended_ || !have_image_) return Status::Error("not coming home");
  if (!tree_pids_.count(pid)) return Status::Error("pid " + std::to_string(pid) + " is not of its tree");
  // The kernel gives out the PID after the last one it gave: a process of
  // the node that forks first takes it, and the seed asks again. The
  // node's own count goes on where it was once the tree is made.
  if (last_pid_before_ == 0) {
    Result<std::string> last = ReadFile(kLastPid);
    if (last.ok()) last_pid_before_ = atoi(last->c_str());
  }
  return WriteFileInPlace(kLastPid, std::to_string(pid - 1));
}

void HomeArrival::RestorePidCount() {
  if (last_pid_before_ == 0) return;
  // Back where it was, higher or lower: the tree's PIDs come from the node
  // it was forked on, which has a range of its own (`roam cluster`), and
  // this node must go on giving out PIDs from its own range, not from there.
  // The kernel skips PIDs in use, so going back takes nobody's.
  (void)WriteFileInPlace(kLastPid, std::to_string(last_pid_before_));
  last_pid_before_ = 0;
}

void HomeArrival::SettleTerminal() {
  if (terminal_ < 0) return;
  // Typed here during the move: the deputy had the terminal raw and held
  // it, so these were neither echoed nor processed yet.
  Result<std::string> typed = TakeUnreadInput(terminal_);
  Status st = terminal_mode_ ? ApplyTermios(terminal_, *terminal_mode_) : Status::Ok();
  if (st.ok()) st = PutUnreadInput(terminal_, terminal_input_, /*echoed=*/true);
  if (st.ok() && typed.ok()) st = PutUnreadInput(terminal_, *typed, /*echoed=*/false);
  if (!st.ok() || !typed.ok()) {
    spdlog::warn("{}: its terminal at home: {}", rec_->gpid, (st.ok() ? typed.status() : st).message());
  }
  close(terminal_);
  terminal_ = -1;
}

void HomeArrival::Go(std::function<void()> source_must_let_go, std::function<void(Status)> done) {
  SettleTerminal();  // it is held: nothing reads the terminal yet
  auto self = shared_from_this();
  LockAndRelease(
      engine_, tree_,
      [this, self, source_must_let_go = std::move(source_must_let_go)](const std::string& why) {
        spdlog::info("{}: waits for its file locks: {}", rec_->gpid, why);
        source_must_let_go();
      },
      [this, self, done = std::move(done)](Result<pid_t> r) {
        if (r.ok()) address_.Running();  // its listeners are there: new connections come in
        done(r.status());
      });
}

// ---- failures ----------------------------------------------------------------------------

void HomeArrival::Fail(const std::string& why) { Fail(Status::Error(why)); }

void HomeArrival::Fail(const Status& why) {
  if (ended_) return;
  spdlog::warn("{}: coming home failed: {}", rec_->gpid, why.message());
  Abort();
  if (cfg_.on_failed) cfg_.on_failed(why);
}

// A held process or a waiting seed becomes the deputy again. A rebuild
// under way does so itself if it fails; if it succeeds, the reset queued
// after it drops the tree, which does the same.
void HomeArrival::PostUndo() {
  auto tree = tree_;
  const bool abandon = seeded_ && !rebuild_started_;
  const pid_t pid = rec_->pid;
  const InPlaceSeed seed = seed_;
  InPlaceFallback fallback = DeputyProgram(cfg_.roam_path, cfg_.control_socket, rec_->gpid);
  engine_.Post([tree, abandon, pid, seed, fallback] {
    if (*tree) {
      tree->reset();
    } else if (abandon) {
      RestoredTree::AbandonInPlace(pid, seed, fallback);
    }
  });
}

void HomeArrival::Abort() {
  if (ended_) return;
  ended_ = true;
  address_.Undo();
  RestorePidCount();
  if (source_ && !source_->closed()) {
    pb::LinkFrame reply;
    reply.mutable_reply()->set_error("home " + rec_->gpid + ": the move was called off");
    source_->Send(reply);
    source_->set_handlers(nullptr, nullptr);
    source_->Close("move failed");
  }
  receiver_.CloseFiles();
  PostUndo();
  // The deputy's seed wrote them (half 1, before the rebuild); the
  // process runs on at the source with its own copy.
  const std::vector<std::string> carried = carried_;
  const std::string id = rec_->gpid;
  engine_.Post([carried, id] { RemoveCarriedFiles(id, carried, "the move failed"); });
  if (!rebuilding_) RemoveImageDir(image_dir());
}

}  // namespace roam
