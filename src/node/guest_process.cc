#include "node/guest_process.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "ckpt/checkpoint.h"
#include "common/file_util.h"
#include "common/proc_sample.h"
#include "node/job_terminal.h"
#include "common/terminal.h"

namespace roam {

namespace {

constexpr size_t kChunk = 64 << 10;
// Output is read from the process only while less than this waits to be
// sent on the link: the kernel's socket buffer does the rest.
constexpr size_t kLinkHighWater = 256 << 10;
constexpr auto kStatsPeriod = std::chrono::seconds(1);

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

GuestProcess::GuestProcess(asio::io_context& io, std::shared_ptr<LinkSession> link, pb::SpawnRequest req,
                           SpawnedGuest spawned)
    : link_(std::move(link)), req_(std::move(req)), spawned_(spawned), stats_timer_(io) {
  out_.desc = std::make_unique<asio::posix::stream_descriptor>(io, spawned_.stdout_fd);
  out_.desc->non_blocking(true);
  if (spawned_.stderr_fd >= 0) {
    err_.desc = std::make_unique<asio::posix::stream_descriptor>(io, spawned_.stderr_fd);
    err_.desc->non_blocking(true);
    err_.is_stderr = true;
  } else {
    err_.eof = true;
  }
  if (spawned_.tty) {
    in_desc_ = out_.desc.get();
  } else {
    in_own_ = std::make_unique<asio::posix::stream_descriptor>(io, spawned_.stdin_fd);
    in_own_->non_blocking(true);
    in_desc_ = in_own_.get();
  }
  buf_.resize(kChunk);
}

GuestProcess::~GuestProcess() = default;

void GuestProcess::Start(std::function<void()> on_done) {
  on_done_ = std::move(on_done);
  auto self = shared_from_this();
  link_->set_handlers([this, self](pb::LinkFrame& f) { OnLinkFrame(f); },
                      [this, self](const std::string& why) { OnLinkClosed(why); });
  link_->set_on_drained([this, self] {
    ReadOutput(out_);
    ReadOutput(err_);
  });
  last_sample_ms_ = NowMs();
  ReadOutput(out_);
  ReadOutput(err_);
  if (!started_here_) return SampleStats();
  // Spawned a moment ago: it has used no CPU yet, which is the baseline, and
  // the first figures wait a period. A short job is then never sampled: a
  // sample (its /proc files, CANTMOVE's look at its maps and fds) would
  // take the CPU from its start (docs/BENCHMARKS.md, "Remote start").
  sampled_ = true;
  stats_timer_.expires_after(kStatsPeriod);
  stats_timer_.async_wait([this, self](asio::error_code ec) {
    if (!ec) SampleStats();
  });
}

// ---- output: process -> home ---------------------------------------------------------

bool GuestProcess::ReadOnce(Output& o) {
  ssize_t n;
  do {
    n = ::read(o.desc->native_handle(), buf_.data(), buf_.size());
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    pb::LinkFrame f;
    if (o.is_stderr) {
      f.mutable_stream()->set_stderr_data(buf_.data(), static_cast<size_t>(n));
    } else {
      f.mutable_stream()->set_stdout_data(buf_.data(), static_cast<size_t>(n));
    }
    link_->Send(f);
    return true;
  }
  if (n < 0 && errno == EAGAIN) return false;
  o.eof = true;  // 0: all writers closed; EIO: a pty whose last slave closed
  return false;
}

void GuestProcess::ReadOutput(Output& o) {
  // Read until the pipe is empty or the link is congested, and only then
  // wait: the reactor reports edges, not levels.
  while (!o.eof && !finished_ && !link_->closed()) {
    if (link_->queued_bytes() > kLinkHighWater) return;  // on_drained calls again
    if (!ReadOnce(o)) break;
  }
  if (o.eof) return MaybeFinish();
  if (o.waiting || finished_ || link_->closed()) return;
  o.waiting = true;
  auto self = shared_from_this();
  o.desc->async_wait(asio::posix::stream_descriptor::wait_read, [this, self, &o](asio::error_code ec) {
    o.waiting = false;
    if (!ec) ReadOutput(o);
  });
}

// ---- input and control: home -> process ------------------------------------------------

void GuestProcess::OnLinkFrame(pb::LinkFrame& f) {
  if (!f.has_stream()) return;
  pb::StreamFrame& s = *f.mutable_stream();
  switch (s.kind_case()) {
    case pb::StreamFrame::kMoveOut:
      if (on_move_order_) on_move_order_(s.move_out());
      break;
    case pb::StreamFrame::kMoveDecision:
      if (on_move_frame_) on_move_frame_(s);
      break;
    case pb::StreamFrame::kStdinData:
      if (stdin_closed_) {
        // The process closed its stdin: what arrives is dropped but acknowledged.
        pb::LinkFrame ack;
        ack.mutable_stream()->set_stdin_ack(s.stdin_data().size());
        link_->Send(ack);
        return;
      }
      stdin_queue_.push_back(std::move(*s.mutable_stdin_data()));
      WriteStdin();
      break;
    case pb::StreamFrame::kStdinEof:
      stdin_eof_ = true;
      WriteStdin();
      break;
    case pb::StreamFrame::kSignal:
      Signal(s.signal());
      break;
    case pb::StreamFrame::kWinsize:
      if (spawned_.tty) (void)ApplyWindowSize(spawned_.stdout_fd, s.winsize());
      break;
    default:
      break;  // frames meant for the home are ignored
  }
}

void GuestProcess::WriteStdin() {
  if (stdin_closed_ || stdin_waiting_ || held_) return;
  uint64_t taken = 0;
  while (!stdin_queue_.empty()) {
    const std::string& chunk = stdin_queue_.front();
    ssize_t n = ::write(in_desc_->native_handle(), chunk.data() + stdin_offset_, chunk.size() - stdin_offset_);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n < 0) {  // EPIPE: the process closed its stdin; the rest is dropped
      for (const auto& c : stdin_queue_) taken += c.size();
      taken -= stdin_offset_;
      taken -= std::min<uint64_t>(taken, preacked_);
      preacked_ = 0;
      stdin_queue_.clear();
      stdin_offset_ = 0;
      stdin_closed_ = true;
      break;
    }
    // Bytes a previous node acknowledged already are not acknowledged again.
    uint64_t pre = std::min<uint64_t>(preacked_, static_cast<uint64_t>(n));
    preacked_ -= pre;
    taken += static_cast<uint64_t>(n) - pre;
    stdin_offset_ += static_cast<size_t>(n);
    if (stdin_offset_ == chunk.size()) {
      stdin_queue_.pop_front();
      stdin_offset_ = 0;
    }
  }
  if (taken > 0) {
    pb::LinkFrame ack;
    ack.mutable_stream()->set_stdin_ack(taken);
    link_->Send(ack);
  }
  if (stdin_closed_) {
    if (!spawned_.tty && in_own_) in_own_->close();
    return;
  }
  if (!stdin_queue_.empty()) {
    stdin_waiting_ = true;
    auto self = shared_from_this();
    in_desc_->async_wait(asio::posix::stream_descriptor::wait_write, [this, self](asio::error_code ec) {
      stdin_waiting_ = false;
      if (!ec && !finished_) WriteStdin();
    });
    return;
  }
  if (stdin_eof_) {
    if (spawned_.tty) {
      const char eof = 4;  // ^D: end of input at the start of a line, as a terminal would
      ssize_t ignored = ::write(spawned_.stdin_fd, &eof, 1);
      (void)ignored;
      stdin_eof_ = false;
      tty_eof_written_ = true;
    } else {
      stdin_closed_ = true;
      in_own_->close();
    }
  }
}

// The guest process leads its own session, so its process group is
// orphaned and the kernel discards SIGTSTP, SIGTTIN and SIGTTOU whose action
// is the default. At home (a job of the user's shell) they would stop it:
// such a signal becomes SIGSTOP, unless the process catches it.
static bool CatchesSignal(pid_t pid, int sig) {
  Result<std::string> status = ReadFile("/proc/" + std::to_string(pid) + "/status");
  if (!status.ok()) return false;
  size_t at = status->find("SigCgt:");
  if (at == std::string::npos) return false;
  uint64_t mask = std::strtoull(status->c_str() + at + 7, nullptr, 16);
  return (mask >> (sig - 1)) & 1;
}

void GuestProcess::Signal(const pb::SignalMsg& s) {
  if (s.signo() <= 0 || s.signo() >= NSIG) return;
  if (remnant_ && !finished_) {
    ::kill(-spawned_.pid, s.signo());  // what is left of its group
    return;
  }
  if (exited_ || held_) return;
  int sig = s.signo();
  if ((sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU) && !CatchesSignal(spawned_.pid, sig)) sig = SIGSTOP;
  if (s.group() && ::kill(-spawned_.pid, sig) == 0) return;
  ::kill(spawned_.pid, sig);
}

// ---- figures for roam ps ---------------------------------------------------------------

void GuestProcess::SampleStats() {
  if (finished_ || exited_) return;
  if (held_) {  // the engine has it; figures resume after the move
    stats_timer_.expires_after(kStatsPeriod);
    auto self = shared_from_this();
    stats_timer_.async_wait([this, self](asio::error_code ec) {
      if (!ec) SampleStats();
    });
    return;
  }
  Result<ProcSample> s = SampleProc(spawned_.pid);
  const int64_t now = NowMs();
  if (s.ok() && link_->queued_bytes() < kLinkHighWater) {
    pb::LinkFrame f;
    pb::ProcStats* st = f.mutable_stream()->mutable_stats();
    // The first sample only sets the baseline (a moved-in process brings
    // CPU time of its own that was not spent here).
    st->set_cpu_percent(sampled_ ? CpuPercent(last_ticks_, s->cpu_ticks, now - last_sample_ms_) : 0);
    st->set_rss_bytes(s->rss_bytes);
    st->set_time_seconds(TicksToSeconds(s->cpu_ticks));
    st->set_state(ProcStateName(s->state));
    st->set_cantmove(CantMoveReason(spawned_.pid, req_.spec().address()));
    st->set_demand(sampled_ ? CpuDemand(last_sched_ns_, s->sched_ns, now - last_sample_ms_) : 0);
    link_->Send(f);
  }
  if (s.ok()) {
    last_ticks_ = s->cpu_ticks;
    last_sched_ns_ = s->sched_ns;
    sampled_ = true;
  }
  last_sample_ms_ = now;
  stats_timer_.expires_after(kStatsPeriod);
  auto self = shared_from_this();
  stats_timer_.async_wait([this, self](asio::error_code ec) {
    if (!ec) SampleStats();
  });
}

// ---- the end ---------------------------------------------------------------------------

void GuestProcess::Exited(int wait_status) {
  exited_ = true;
  wait_status_ = wait_status;
  stats_timer_.cancel();
  // Whatever the process wrote before exiting is in the pipes: take it all
  // now (bounded by the pipes' size), even from a congested link. A
  // descendant still holding a pipe open does not hold the exit back.
  for (Output* o : {&out_, &err_}) {
    while (!o->eof && ReadOnce(*o)) {
    }
  }
  if ((!out_.eof || !err_.eof) && !committed_ && !link_->closed()) {
    // Others of its tree still hold its output (a child left running in
    // the background): the exit goes now, their output after it, as at home.
    remnant_ = true;
    SendExit(true);
    if (in_own_) {
      asio::error_code ignored;
      in_own_->close(ignored);  // what they read of stdin ends here
    }
    stdin_closed_ = true;
    spdlog::info("{} exited; the rest of its tree still writes to its output", req_.gpid());
    if (auto f = std::move(on_root_exit_)) f();
    ReadOutput(out_);
    ReadOutput(err_);
    return;
  }
  out_.eof = err_.eof = true;
  MaybeFinish();
}

void GuestProcess::SendExit(bool output_follows) {
  pb::LinkFrame f;
  pb::ExitStatus* e = f.mutable_stream()->mutable_exit();
  if (WIFSIGNALED(wait_status_)) {
    e->set_signal(WTERMSIG(wait_status_));
    e->set_core_dumped(WCOREDUMP(wait_status_));
  } else {
    e->set_code(WEXITSTATUS(wait_status_));
  }
  e->set_output_follows(output_follows);
  link_->Send(f);
}

void GuestProcess::MaybeFinish() {
  if (finished_ || !exited_ || !out_.eof || !err_.eof) return;
  finished_ = true;
  spdlog::debug("{} exited ({}), guest of {}", req_.gpid(), wait_status_, req_.home());
  if (remnant_) {
    pb::LinkFrame f;
    f.mutable_stream()->set_output_end(true);
    link_->Send(f);
  } else {
    SendExit(false);
  }
  link_->Close("done");
  asio::error_code ignored;
  if (out_.desc) out_.desc->close(ignored);
  if (err_.desc) err_.desc->close(ignored);
  if (in_own_) in_own_->close(ignored);
  if (auto done = std::move(on_done_)) done();
}

void GuestProcess::OnLinkClosed(const std::string& why) {
  if (finished_ || committed_) return;
  if (remnant_) {  // nobody at home reads the rest of its output
    spdlog::info("{}: link to home {} lost ({}); killing the rest of its tree", req_.gpid(), req_.home(), why);
    KillAll();
    out_.eof = err_.eof = true;
    return MaybeFinish();
  }
  if (held_ && on_move_link_lost_) {
    spdlog::info("{}: link to home {} lost during a move ({}); the frozen copy goes", req_.gpid(), req_.home(), why);
    return on_move_link_lost_();
  }
  spdlog::info("{}: link to home {} lost ({}); killing it", req_.gpid(), req_.home(), why);
  KillAll();
}

void GuestProcess::KillAll() {
  if (remnant_ && !finished_) {  // the rest of the tree: its group (pipes reach their end)
    ::kill(-spawned_.pid, SIGKILL);
    return;
  }
  if (exited_) return;
  if (held_ && on_move_link_lost_) return on_move_link_lost_();  // the engine kills what it holds
  ::kill(-spawned_.pid, SIGKILL);
  ::kill(spawned_.pid, SIGKILL);
  // Exited() follows from the reaper.
}

}  // namespace roam

// ---- migration hooks -------------------------------------------------------------------

namespace roam {

void GuestProcess::set_move_handlers(std::function<void(const pb::StreamFrame&)> on_frame,
                                     std::function<void()> on_link_lost) {
  on_move_frame_ = std::move(on_frame);
  on_move_link_lost_ = std::move(on_link_lost);
}

void GuestProcess::BeginMove() { held_ = true; }

void GuestProcess::SendToHome(const pb::StreamFrame& f) {
  pb::LinkFrame out;
  *out.mutable_stream() = f;
  link_->Send(out);
}

void GuestProcess::DrainOutput() {
  // The whole tree is frozen: the pipes hold all there is, and it all goes
  // before the move's next frame, whatever the link's queue.
  for (Output* o : {&out_, &err_}) {
    while (!o->eof && ReadOnce(*o)) {
    }
  }
}

size_t GuestProcess::UnreadInput() const {
  size_t n = 0;
  for (size_t i = 0; i < stdin_queue_.size(); ++i) n += stdin_queue_[i].size() - (i == 0 ? stdin_offset_ : 0);
  int in_pipe = 0;
  if (!spawned_.tty && !stdin_closed_ && ::ioctl(spawned_.stdin_fd, FIONREAD, &in_pipe) == 0 && in_pipe > 0) {
    n += static_cast<size_t>(in_pipe);
  }
  return n;
}

void GuestProcess::StdinLeftovers(std::string* taken, std::string* pending, bool* eof) {
  taken->clear();
  pending->clear();
  for (size_t i = 0; i < stdin_queue_.size(); ++i) {
    const std::string& c = stdin_queue_[i];
    pending->append(i == 0 ? c.substr(stdin_offset_) : c);
  }
  *eof = stdin_eof_ || stdin_closed_;
  if (spawned_.tty) {
    // Out of the terminal (a copy cannot be taken): put back if the move fails.
    Result<int> peer = OpenPtyPeer(spawned_.stdout_fd);
    Result<std::string> got = peer.ok() ? TakeUnreadInput(*peer) : Result<std::string>(peer.status());
    if (peer.ok()) close(*peer);
    if (!got.ok()) spdlog::warn("{}: its terminal's unread input stays behind: {}", req_.gpid(), got.status().message());
    if (got.ok()) tty_taken_ = std::move(*got);
    // The ^D that stands for the end of the home's input, not read yet, is
    // that end: it goes as such (a home whose stdin is a file or pipe has
    // no terminal to put it in, and reads the end there).
    *taken = tty_taken_;
    if (tty_eof_written_ && !taken->empty() && taken->back() == 4) {
      taken->pop_back();
      *eof = true;
    }
    return;
  }
  if (stdin_closed_) return;
  // The bytes in the process's stdin pipe: copied (tee), not consumed, so a
  // failed move leaves them where they were. The pipe is found among the
  // process's fds 0-2 by its inode.
  struct stat ours;
  if (fstat(spawned_.stdin_fd, &ours) != 0) return;
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, spawned_.pid, 0));
  if (pidfd < 0) return;
  for (int fd = 0; fd <= 2; ++fd) {
    struct stat theirs;
    std::string path = "/proc/" + std::to_string(spawned_.pid) + "/fd/" + std::to_string(fd);
    if (stat(path.c_str(), &theirs) != 0 || theirs.st_ino != ours.st_ino || theirs.st_dev != ours.st_dev) continue;
    int rd = static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd, fd, 0));
    if (rd < 0) break;
    int scratch[2];
    if (pipe2(scratch, O_CLOEXEC | O_NONBLOCK) == 0) {
      fcntl(scratch[1], F_SETPIPE_SZ, 1 << 20);
      ssize_t n = ::tee(rd, scratch[1], 1 << 20, SPLICE_F_NONBLOCK);
      std::string buf(1 << 16, '\0');
      while (n > 0) {
        ssize_t r = ::read(scratch[0], buf.data(), buf.size());
        if (r <= 0) break;
        taken->append(buf.data(), static_cast<size_t>(r));
        n -= r;
      }
      close(scratch[0]);
      close(scratch[1]);
    }
    close(rd);
    break;
  }
  close(pidfd);
}

bool GuestProcess::RecordTerminal(pb::ImageEnd* end) const {
  return spawned_.tty && roam::RecordTerminal(spawned_.stdout_fd, end);
}

void GuestProcess::MoveAborted() {
  if (!tty_taken_.empty()) {
    Result<int> peer = OpenPtyPeer(spawned_.stdout_fd);
    Status st = peer.ok() ? PutUnreadInput(*peer, tty_taken_) : peer.status();
    if (peer.ok()) close(*peer);
    if (!st.ok()) spdlog::warn("{}: {} bytes of input lost: {}", req_.gpid(), tty_taken_.size(), st.message());
    tty_taken_.clear();
  }
  held_ = false;
  on_move_frame_ = nullptr;
  on_move_link_lost_ = nullptr;
  if (link_->closed()) return KillAll();
  WriteStdin();
  ReadOutput(out_);
  ReadOutput(err_);
}

void GuestProcess::MovedAway() {
  if (finished_) return;
  finished_ = true;
  exited_ = true;  // for this node, the process is gone
  stats_timer_.cancel();
  link_->set_handlers(nullptr, nullptr);
  link_->Close("moved away");
  asio::error_code ignored;
  if (out_.desc) out_.desc->close(ignored);
  if (err_.desc) err_.desc->close(ignored);
  if (in_own_) in_own_->close(ignored);
  if (auto done = std::move(on_done_)) done();
}

void GuestProcess::PrependStdin(const std::string& taken, const std::string& pending, bool eof) {
  if (!pending.empty()) stdin_queue_.push_front(pending);
  if (!taken.empty()) stdin_queue_.push_front(taken);
  preacked_ = taken.size();
  stdin_eof_ = stdin_eof_ || eof;
  WriteStdin();
}

}  // namespace roam
