#include "cli/become_seed.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

#include "ckpt/restore.h"
#include "common/file_util.h"
#include "common/proc_status.h"
#include "wire/frame.h"
#include "session.pb.h"

namespace roam {

namespace {

constexpr int kUnclaimedSeconds = 30;

// Back to being the deputy: the process was not rebuilt here.
[[noreturn]] void BecomeDeputyAgain(const std::string& gpid) {
  setenv("ROAM_TAKE_OVER", gpid.c_str(), 1);
  char* argv[] = {const_cast<char*>("roam"), const_cast<char*>("run"), nullptr};
  execv("/proc/self/exe", argv);
  fprintf(stderr, "roam: cannot become the deputy of %s again: %s\n", gpid.c_str(), strerror(errno));
  _exit(255);
}

bool Traced() {
  Result<std::string> text = ReadFile("/proc/self/status");
  if (!text.ok()) return false;
  Result<ProcStatus> s = ParseProcStatus(*text);
  return s.ok() && s->tracer_pid != 0;
}

}  // namespace

void BecomeSeed(const pb::ComeHome& order, int fd) {
  const std::string dir = order.image_dir();
  const std::string gpid = order.gpid();
  std::vector<StagedPiece> staged;
  for (const pb::StagedPiece& s : order.staged()) staged.push_back({s.vaddr(), s.len(), s.at(), s.pid(), {}});
  // Signals wait: Ctrl-C during the move reaches the process once it is
  // rebuilt (or the deputy again), not this seed.
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;  // the image's own limits come back with it
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  // A tree: the home roamd makes each PID of it the next one (when this
  // user may not choose PIDs); one process of the tree asks at a time.
  const PidAsker ask = [&fd](pid_t pid) -> Status {
    pb::StreamFrame q;
    q.set_pid_wanted(pid);
    Status st = WriteFrame(fd, q);
    pb::StreamFrame a;
    while (st.ok() && !a.has_error() && a.kind_case() != pb::StreamFrame::kPidNext) st = ReadFrame(fd, &a);
    if (!st.ok()) return st;
    if (a.has_error()) return Status::Error(a.error());
    if (a.pid_next() != pid) return Status::Error("roamd answered pid " + std::to_string(a.pid_next()));
    return Status::Ok();
  };
  Result<InPlaceSeed> seed = PrepareInPlaceSeed(dir, &fd, ask, staged);
  pb::StreamFrame f;
  if (seed.ok()) {
    f.mutable_seed_ready()->set_base(seed->base);
    f.mutable_seed_ready()->set_helper(seed->helper);
    f.mutable_seed_ready()->set_pages_fd(seed->pages_fd);
    for (const InPlaceSeed::Child& c : seed->children) {
      pb::SeedChild* out = f.mutable_seed_ready()->add_children();
      out->set_pid(c.pid);
      out->set_helper(c.helper);
      out->set_pages_fd(c.pages_fd);
    }
  } else {
    f.mutable_seed_ready()->set_error(seed.status().message());
  }
  // The tree's other processes, made for this move only, go with it.
  auto drop_children = [&seed] {
    for (const InPlaceSeed::Child& c : seed->children) kill(c.pid, SIGKILL);
    for (const InPlaceSeed::Child& c : seed->children) waitpid(c.pid, nullptr, __WALL);  // ours, or ECHILD
  };
  Status sent = WriteFrame(fd, f);
  close(fd);
  if (seed.ok() && !sent.ok()) drop_children();
  if (!seed.ok() || !sent.ok()) BecomeDeputyAgain(gpid);
  // roamd takes this process under ptrace and rebuilds it; this loop is
  // gone with the rest of our memory. If nobody comes, back to deputy.
  const time_t deadline = time(nullptr) + kUnclaimedSeconds;
  for (;;) {
    timespec one{1, 0};
    nanosleep(&one, nullptr);
    if (time(nullptr) > deadline && !Traced()) {
      drop_children();
      BecomeDeputyAgain(gpid);
    }
  }
}

}  // namespace roam
