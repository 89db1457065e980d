#include "cli/run_command.h"

#include <fcntl.h>
#include <signal.h>
#include <dirent.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <poll.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <cstring>
#include <mutex>
#include <thread>

#include "cli/cli_error.h"
#include "cli/control_client.h"
#include "cli/become_seed.h"
#include "common/file_util.h"
#include "control.pb.h"
#include "wire/frame.h"
#include "common/terminal.h"
#include "session.pb.h"

extern char** environ;

namespace roam {

namespace {

bool stdio_reserved[3] = {false, false, false};  // by ReserveClosedStdio

void CloseReservedStdio() {
  for (int fd = 0; fd < 3; ++fd) {
    if (stdio_reserved[fd]) ::close(fd);
  }
}

}  // namespace

void ReserveClosedStdio() {
  for (int fd = 0; fd < 3; ++fd) {
    if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF) continue;
    // The lowest free number, which is fd itself: the lower ones are open.
    int null = ::open("/dev/null", O_RDWR);
    stdio_reserved[fd] = null == fd;
    if (null >= 0 && null != fd) ::close(null);
  }
}

namespace {

constexpr size_t kChunk = 64 << 10;
// stdin bytes in flight toward the process (see session.proto).
constexpr uint64_t kStdinWindow = 1 << 20;
// Output read from roamd but not yet written to our stdout/stderr. After a
// signal was passed on, more is read, so that the process's exit can be
// seen behind output that a stalled reader does not take.
constexpr size_t kOutputQueue = 1 << 20;
constexpr size_t kOutputQueueSignaled = 64 << 20;

int Fail(const std::string& msg) { return roam::Fail("run", msg, 255); }

// ---- the caller's context ------------------------------------------------------------

Status BuildSpec(const RunOptions& opt, pb::RunSpec* spec) {
  for (const auto& a : opt.argv) spec->add_argv(a);
  for (char** e = environ; *e; ++e) spec->add_env(*e);
  char cwd[PATH_MAX];
  if (!::getcwd(cwd, sizeof cwd)) return Status::Errno("getcwd");
  spec->set_cwd(cwd);
  mode_t m = ::umask(0);
  ::umask(m);
  spec->set_umask(m);
  for (int r = 0; r < RLIM_NLIMITS; ++r) {
    rlimit l{};
    if (::getrlimit(static_cast<__rlimit_resource>(r), &l) != 0) continue;
    pb::Rlimit* out = spec->add_rlimits();
    out->set_resource(r);
    out->set_cur(l.rlim_cur);
    out->set_max(l.rlim_max);
  }
  errno = 0;
  const int nice = ::getpriority(PRIO_PROCESS, 0);
  if (errno == 0) spec->set_nice(nice);
  spec->set_tty(opt.tty);
  if (opt.tty && ::isatty(STDIN_FILENO)) {
    if (Result<pb::Termios> mode = ReadTermios(STDIN_FILENO); mode.ok()) *spec->mutable_termios() = *mode;
    *spec->mutable_winsize() = ReadWindowSize(STDIN_FILENO);
  }
  return Status::Ok();
}

// ---- the deputy ----------------------------------------------------------------------

// Signals passed on to the process: every one a program may be sent,
// but those that are the deputy's own business: its children (SIGCHLD),
// its output (SIGPIPE), its place on the terminal (SIGTTIN, SIGTTOU), and
// glibc's two internal ones. A fault of its own code still kills it (the
// kernel forces those through). The rest keep their default action. Until
// 2026-12-07 only ten were passed on: any other, such as a real-time
// signal the program handled, killed the deputy, and the job with it.
sigset_t ForwardedSignals() {
  sigset_t set;
  sigemptyset(&set);
  for (int s = 1; s <= SIGRTMAX; ++s) {
    if (s >= SIGRTMIN ||
        (s < 32 && s != SIGKILL && s != SIGSTOP && s != SIGCHLD && s != SIGPIPE && s != SIGTTIN && s != SIGTTOU)) {
      sigaddset(&set, s);
    }
  }
  return set;
}

class Deputy {
 public:
  // `tty`: relay a terminal (raw); `mode`: the mode to leave it in at the
  // end, if not the one it has now (a deputy that took over a -t job).
  Deputy(int fd, bool tty, const pb::Termios* mode) : fd_(fd), tty_(tty) {
    if (mode) end_mode_ = *mode;
  }

  int Run() {
    ::signal(SIGPIPE, SIG_IGN);  // EPIPE on stdout is passed on as SIGPIPE
    signals_ = ForwardedSignals();  // StopSignal() among them
    // Exactly these: a deputy exec'd by roamd starts with all blocked.
    ::pthread_sigmask(SIG_SETMASK, &signals_, nullptr);
    if (::pipe2(stop_stdin_, O_CLOEXEC) != 0) return Fail(std::string("pipe2: ") + strerror(errno));
    if (tty_ && ::isatty(STDIN_FILENO) && !end_mode_.cc().empty()) (void)ApplyTermios(STDIN_FILENO, end_mode_);
    if (tty_ && ::isatty(STDIN_FILENO) && ::tcgetattr(STDIN_FILENO, &saved_) == 0) {
      raw_ = true;
      EnterRaw();
    }
    StartRelays();
    return OutputLoop();
  }

 private:
  void EnterRaw() {
    termios t = saved_;
    ::cfmakeraw(&t);
    ::tcsetattr(STDIN_FILENO, TCSADRAIN, &t);
  }
  void LeaveRaw() {
    if (raw_) ::tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_);
  }

  void Send(const pb::StreamFrame& f) {
    std::lock_guard<std::mutex> lock(send_mu_);
    // A failed write shows as the read side's end in OutputLoop.
    (void)WriteFrame(fd_, f);
  }

  void SendSignal(int sig, bool group) {
    if (sig != SIGCONT && sig != SIGWINCH && sig != SIGTSTP) {
      std::lock_guard<std::mutex> lock(out_mu_);
      signaled_ = true;
      out_cv_.notify_all();
    }
    pb::StreamFrame f;
    f.mutable_signal()->set_signo(sig);
    f.mutable_signal()->set_group(group);
    Send(f);
  }

  // Sent by us to ourselves, it tells SignalLoop to stop; from anyone
  // else it is the process's.
  static int StopSignal() { return SIGRTMIN + 1; }

  void StartRelays() {
    {
      std::lock_guard<std::mutex> lock(relay_mu_);
      relays_running_ = 2;
    }
    std::thread(&Deputy::SignalLoop, this).detach();
    std::thread(&Deputy::StdinLoop, this).detach();
  }

  void RelayDone() {
    std::lock_guard<std::mutex> lock(relay_mu_);
    --relays_running_;
    relay_cv_.notify_all();
  }

  // Stops both relay threads. After it every signal taken has been sent,
  // and so has every stdin byte read; later signals stay pending, later
  // input stays in the terminal or pipe.
  void StopRelays() {
    stopping_ = true;
    ::kill(::getpid(), StopSignal());
    char one = 1;
    (void)!::write(stop_stdin_[1], &one, 1);
    {
      std::lock_guard<std::mutex> credit(credit_mu_);  // a waiter sees stopping_ or gets the notify
    }
    credit_cv_.notify_all();
    std::unique_lock<std::mutex> lock(relay_mu_);
    relay_cv_.wait(lock, [&] { return relays_running_ == 0; });
    char drain[16];
    while (::read(stop_stdin_[0], drain, sizeof drain) < 0 && errno == EINTR) {
    }
    stopping_ = false;
  }

  void SignalLoop() {
    for (;;) {
      siginfo_t info{};
      int sig = ::sigwaitinfo(&signals_, &info);
      if (sig < 0) continue;
      if (sig == StopSignal() && info.si_code == SI_USER && info.si_pid == ::getpid()) {
        if (stopping_) return RelayDone();
        continue;
      }
      // A terminal's signals (Ctrl-C, Ctrl-Z, ...) went to our whole job:
      // they go to the process's whole group too.
      const bool from_tty = info.si_code == SI_KERNEL;
      if (sig == SIGWINCH && tty_) {
        pb::StreamFrame f;
        *f.mutable_winsize() = ReadWindowSize(STDIN_FILENO);
        Send(f);
      } else if (sig == SIGTSTP) {
        SendSignal(SIGTSTP, from_tty);
        LeaveRaw();
        ::kill(::getpid(), SIGSTOP);  // like the process, we stop; SIGCONT resumes us
      } else if (sig == SIGCONT) {
        if (raw_) EnterRaw();
        SendSignal(SIGCONT, true);
      } else {
        SendSignal(sig, from_tty);
      }
    }
  }

  // The bytes just read are sent: a hold that came meanwhile is answered.
  void DoneReading() {
    std::lock_guard<std::mutex> lock(credit_mu_);
    reading_ = false;
    if (hold_ack_owed_) SendHoldAck();
    hold_ack_owed_ = false;
  }

  void SendHoldAck() {  // under credit_mu_
    pb::StreamFrame ack;
    ack.set_stdin_hold_ack(true);
    Send(ack);
  }

  void StdinLoop() {
    if (stdin_ended_) return RelayDone();
    std::string buf(kChunk, '\0');
    for (;;) {
      {
        // A move home holds input where it is (stdin_hold).
        std::unique_lock<std::mutex> lock(credit_mu_);
        credit_cv_.wait(lock, [&] { return stopping_ || !stdin_held_; });
        if (stopping_) return RelayDone();
      }
      pollfd p[2] = {{STDIN_FILENO, POLLIN, 0}, {stop_stdin_[0], POLLIN, 0}};
      if (::poll(p, 2, -1) < 0) continue;  // a hold that came meanwhile is seen below, before reading
      if (p[1].revents) return RelayDone();  // nothing read: nothing lost
      {
        std::lock_guard<std::mutex> lock(credit_mu_);
        if (stdin_held_) continue;
        reading_ = true;  // a hold from now on is answered once what this reads is sent
      }
      ssize_t n = ::read(STDIN_FILENO, buf.data(), buf.size());
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        DoneReading();
        continue;
      }
      if (n <= 0) break;
      {
        // Stopping, the bytes read go at once: roamd holds them.
        std::unique_lock<std::mutex> lock(credit_mu_);
        credit_cv_.wait(lock, [&] { return stopping_ || in_flight_ + static_cast<uint64_t>(n) <= kStdinWindow; });
        in_flight_ += static_cast<uint64_t>(n);
      }
      pb::StreamFrame f;
      f.set_stdin_data(buf.data(), static_cast<size_t>(n));
      Send(f);
      DoneReading();
    }
    stdin_ended_ = true;
    pb::StreamFrame eof;
    eof.set_stdin_eof(true);
    Send(eof);
    DoneReading();
    RelayDone();
  }

  // The process comes home (docs/MIGRATION.md): this deputy becomes it.
  // Relays stop, all output is written, the writer thread ends, and this
  // process, single-threaded again, becomes the seed in place (BecomeSeed),
  // keeping the memory pre-copy staged in it. If it cannot, roamd hears why
  // and this stays the deputy.
  void ComeHome(const pb::ComeHome& c) {
    StopRelays();
    DrainOutput(false);
    {
      std::lock_guard<std::mutex> lock(out_mu_);
      writer_stop_ = true;
      out_cv_.notify_all();
    }
    if (SingleThreaded()) BecomeSeed(c, fd_);  // never returns
    {
      std::lock_guard<std::mutex> lock(out_mu_);
      writer_stop_ = false;
    }
    std::thread(&Deputy::WriterLoop, this).detach();
    pb::StreamFrame f;
    f.mutable_seed_ready()->set_error("roam run could not stop its threads to become the process");
    Send(f);
    StartRelays();
  }

  // Waits until the threads that returned are gone (up to 2 s).
  static bool SingleThreaded() {
    for (int i = 0; i < 2000; ++i) {
      int n = 0;
      if (DIR* d = ::opendir("/proc/self/task")) {
        while (dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
        ::closedir(d);
      }
      if (n == 1) return true;
      ::usleep(1000);
    }
    return false;
  }

  // Pre-copy home: room for the process's memory, reserved (no memory yet).
  void Reserve(uint64_t len) {
    Release();
    pb::StreamFrame f;
    void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p != MAP_FAILED) {
      reserved_ = p;
      reserved_len_ = len;
    }
    f.set_stage_reserved(p == MAP_FAILED ? 0 : reinterpret_cast<uint64_t>(p));
    Send(f);
  }
  void Release() {
    if (reserved_ != nullptr) ::munmap(reserved_, reserved_len_);
    reserved_ = nullptr;
  }

  // The writer thread: writes queued output in order; on EPIPE the process
  // is sent SIGPIPE, as if it had written to the closed pipe itself.
  void WriterLoop() {
    for (;;) {
      std::pair<int, std::string> item;
      {
        std::unique_lock<std::mutex> lock(out_mu_);
        out_cv_.wait(lock, [&] { return !out_queue_.empty() || writer_stop_; });
        if (out_queue_.empty()) return;  // writer_stop_: the deputy becomes its process
        item = std::move(out_queue_.front());
        out_queue_.pop_front();
      }
      const int fd = item.first;
      const std::string& data = item.second;
      size_t off = 0;
      while (!broken_[fd] && off < data.size()) {
        ssize_t n = ::write(fd, data.data() + off, data.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
          broken_[fd] = true;
          if (errno == EPIPE) SendSignal(SIGPIPE, false);
          break;
        }
        off += static_cast<size_t>(n);
        last_progress_ = std::chrono::steady_clock::now();
      }
      std::lock_guard<std::mutex> lock(out_mu_);
      out_bytes_ -= data.size();
      out_cv_.notify_all();
    }
  }

  void QueueOutput(int fd, std::string* data) {
    std::unique_lock<std::mutex> lock(out_mu_);
    out_cv_.wait(lock, [&] { return out_bytes_ < (signaled_ ? kOutputQueueSignaled : kOutputQueue); });
    out_bytes_ += data->size();
    out_queue_.emplace_back(fd, std::move(*data));
    out_cv_.notify_all();
  }

  // Before exiting: everything written, as a local process's output would
  // be. Only for a process killed by a signal, output a reader has stopped
  // taking for a second is given up: locally it would have died in write().
  void DrainOutput(bool killed) {
    std::unique_lock<std::mutex> lock(out_mu_);
    while (out_bytes_ > 0) {
      out_cv_.wait_for(lock, std::chrono::milliseconds(100));
      if (killed && std::chrono::steady_clock::now() - last_progress_.load() > std::chrono::seconds(1)) return;
    }
  }

  int OutputLoop() {
    std::thread(&Deputy::WriterLoop, this).detach();
    std::string error;
    for (;;) {
      pb::StreamFrame f;
      Status st = ReadFrame(fd_, &f);
      if (!st.ok()) {
        DrainOutput(true);
        LeaveRaw();
        return Fail(error.empty() ? "lost the connection to roamd (" + st.message() + ")" : error);
      }
      switch (f.kind_case()) {
        case pb::StreamFrame::kStdoutData:
          QueueOutput(STDOUT_FILENO, f.mutable_stdout_data());
          break;
        case pb::StreamFrame::kStderrData:
          QueueOutput(STDERR_FILENO, f.mutable_stderr_data());
          break;
        case pb::StreamFrame::kStageReserve:
          Reserve(f.stage_reserve());
          break;
        case pb::StreamFrame::kStageRelease:
          Release();
          break;
        case pb::StreamFrame::kStdinHold: {
          std::lock_guard<std::mutex> lock(credit_mu_);
          stdin_held_ = f.stdin_hold();
          credit_cv_.notify_all();
          // Held: roamd begins the move once every byte read is sent.
          hold_ack_owed_ = stdin_held_ && reading_;
          if (stdin_held_ && !reading_) SendHoldAck();
          break;
        }
        case pb::StreamFrame::kStdinAck: {
          std::lock_guard<std::mutex> lock(credit_mu_);
          in_flight_ -= std::min(in_flight_, f.stdin_ack());
          credit_cv_.notify_all();
          break;
        }
        case pb::StreamFrame::kError:
          error = f.error();
          break;
        case pb::StreamFrame::kComeHome:
          ComeHome(f.come_home());
          break;
        case pb::StreamFrame::kExit:
          DrainOutput(f.exit().signal() != 0);
          LeaveRaw();
          if (!error.empty()) roam::Fail("run", error);
          if (f.exit().output_follows()) LeaveRestBehind();
          return ExitLike(f.exit());
        default:
          break;
      }
    }
  }

  // The process exited, but children it left running in the background
  // still write to its output (docs/HOME.md, "What outlives the process").
  // At home the shell would have its status now and their output would go
  // on reaching the terminal: so a child of ours stays to write it, and we
  // exit with the status. The child is in the job's process group, which
  // is no longer the terminal's foreground; it ends with that output
  // (output_end), or when roamd goes; killing it (or a reader that went
  // away: SIGPIPE) ends the rest of the tree on its node.
  void LeaveRestBehind() {
    pid_t child = ::fork();
    if (child > 0) return;
    if (child == 0) {
      ::close(STDIN_FILENO);
      ::signal(SIGPIPE, SIG_DFL);
      sigset_t none;
      sigemptyset(&none);
      ::pthread_sigmask(SIG_SETMASK, &none, nullptr);
    }
    // In the child, or here if there is no child to be had (then the shell
    // waits for the rest, as it would for ssh).
    for (;;) {
      pb::StreamFrame f;
      if (!ReadFrame(fd_, &f).ok() || f.has_output_end()) break;
      int to = f.has_stdout_data() ? STDOUT_FILENO : f.has_stderr_data() ? STDERR_FILENO : -1;
      if (to < 0) continue;
      (void)WriteAll(to, to == STDOUT_FILENO ? f.stdout_data() : f.stderr_data());  // EPIPE: SIGPIPE ends us
    }
    if (child == 0) ::_exit(0);
  }

  static int ExitLike(const pb::ExitStatus& e) {
    if (e.signal() > 0 && e.signal() < NSIG) {
      // Die of the same signal, so that our parent sees what it would have
      // seen had the process run here; no core file of ours.
      rlimit no_core{0, 0};
      ::setrlimit(RLIMIT_CORE, &no_core);
      ::signal(e.signal(), SIG_DFL);
      sigset_t one;
      sigemptyset(&one);
      sigaddset(&one, e.signal());
      ::pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
      ::raise(e.signal());
      return 128 + e.signal();  // a signal whose default is not to terminate
    }
    return e.code();
  }

  int fd_;
  bool tty_;
  sigset_t signals_;  // ForwardedSignals()
  int stop_stdin_[2] = {-1, -1};
  std::mutex relay_mu_;
  std::condition_variable relay_cv_;
  int relays_running_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> stdin_ended_{false};
  bool raw_ = false;
  termios saved_{};
  pb::Termios end_mode_;
  std::mutex send_mu_;
  std::mutex credit_mu_;
  std::condition_variable credit_cv_;
  bool stdin_held_ = false;  // under credit_mu_
  bool reading_ = false;        // under credit_mu_: read bytes not sent yet
  bool hold_ack_owed_ = false;  // under credit_mu_: a hold came while reading_
  uint64_t in_flight_ = 0;
  bool broken_[3] = {false, false, false};  // writer thread only
  std::mutex out_mu_;
  std::condition_variable out_cv_;
  std::deque<std::pair<int, std::string>> out_queue_;
  size_t out_bytes_ = 0;
  bool signaled_ = false;
  bool writer_stop_ = false;  // under out_mu_
  void* reserved_ = nullptr;  // Reserve(): main thread only
  uint64_t reserved_len_ = 0;
  std::atomic<std::chrono::steady_clock::time_point> last_progress_{std::chrono::steady_clock::now()};
};

}  // namespace

int RunCommand(const std::string& socket, const RunOptions& opt) {
  pb::ControlRequest req;
  pb::RunRequest* run = req.mutable_run();
  // A process leaving its home exec's `roam run` with ROAM_TAKE_OVER=GPID:
  // this is then its deputy, with the process's PID, parent and fds 0-2.
  if (const char* gpid = getenv("ROAM_TAKE_OVER")) {
    run->set_take_over(gpid);
    unsetenv("ROAM_TAKE_OVER");
    ::syscall(SYS_close_range, 3, ~0U, 0);  // the program's other files are not the deputy's
    // Its children were killed when it left (their copies run elsewhere):
    // reap them, and any that die later.
    ::signal(SIGCHLD, SIG_IGN);
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
  } else {
    if (opt.argv.empty()) return Fail("no command given (roam run [--on NODE] -- CMD [ARGS...])");
    if (Status st = BuildSpec(opt, run->mutable_spec()); !st.ok()) return Fail(st.message());
    run->set_on(opt.on);
    run->set_lock(opt.lock);
    run->mutable_spec()->set_address(opt.address);
  }
  Result<int> fd = ConnectRoamd(socket);
  if (!fd.ok()) return Fail(fd.status().message());
  if (Status st = WriteFrame(*fd, req); !st.ok()) return Fail("roamd: " + st.message());
  std::string error;
  for (;;) {
    pb::StreamFrame f;
    if (Status st = ReadFrame(*fd, &f); !st.ok()) {
      return Fail(error.empty() ? "roamd closed the connection (" + st.message() + ")" : error);
    }
    if (f.has_error()) {
      error = f.error();
      continue;
    }
    if (f.has_exit()) {  // refused before it started
      if (!error.empty()) roam::Fail("run", error);
      return f.exit().signal() ? 128 + f.exit().signal() : f.exit().code();
    }
    if (!f.has_started()) continue;
    if (f.started().run_here()) {
      ::close(*fd);
      if (!f.started().tmpdir().empty()) ::setenv("TMPDIR", f.started().tmpdir().c_str(), 1);
      if (!f.started().address().empty()) ::setenv("ROAM_ADDRESS", f.started().address().c_str(), 1);
      std::vector<char*> argv;
      for (const auto& a : opt.argv) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      CloseReservedStdio();
      ::execvp(argv[0], argv.data());
      int err = errno;
      fprintf(stderr, "roam run: %s: %s\n", opt.argv[0].c_str(), err == ENOENT ? "command not found" : strerror(err));
      return err == ENOENT ? 127 : 126;
    }
    // Never destroyed: its threads stay blocked until the process exits.
    const pb::Started& st = f.started();
    auto* deputy = new Deputy(*fd, opt.tty || st.tty(), st.has_terminal_mode() ? &st.terminal_mode() : nullptr);
    return deputy->Run();
  }
}

}  // namespace roam
