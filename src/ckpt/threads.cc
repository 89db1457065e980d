// Threads. A multi-threaded process is held as one Tracee per thread: the
// leader's state is the ProcessImage's own fields, every other thread's a
// ThreadImage (registers, XSAVE area, mask, own pending signals, alternate
// stack, rseq, robust list, clear_child_tid, name, scheduling). Memory,
// files, handlers, timers and limits are the process's and go as before.
//
// Dump: the leader is seized first, then /proc/PID/task is read again
// until a pass finds no thread that is not held (a running thread may
// make another meanwhile; a held one cannot).
//
// Restore: once the leader's memory and process-wide state are back, each
// thread is made by a clone3 injected into the leader (CLONE_THREAD and
// the rest of what pthread_create shares), with its TID by set_tid. The
// new thread is traced from its birth (PTRACE_O_TRACECLONE) and stops
// before it runs any code; its own state is set by calls injected into
// it, its registers last. A process rebuilt in place runs as its user and
// may not choose TIDs: the restorer makes the TID the next one the kernel
// gives out and tries again if somebody else took it (the extra thread
// ends at once, never having run).
//
// Credentials are per thread in the kernel (glibc keeps them equal): every
// thread sets the image's, as the leader does.
#include <dirent.h>
#include <signal.h>
#include <linux/sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "ckpt/task_state.h"
#include "common/file_util.h"
#include "common/proc_stat.h"

namespace roam {

namespace {

constexpr int kTidAttempts = 50;
constexpr uint64_t kSetTidAt = 1024;  // in the scratch area: the TID asked for

Result<std::vector<pid_t>> ListTasks(pid_t pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/task";
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) return Status::Errno("open " + path);
  std::vector<pid_t> tids;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') tids.push_back(static_cast<pid_t>(atoi(e->d_name)));
  }
  closedir(dir);
  std::sort(tids.begin(), tids.end());
  return tids;
}

// Whether thread `tid` of `pid` still lives (not ending, not gone).
bool ThreadLives(pid_t pid, pid_t tid) {
  Result<std::string> text = ReadFile("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/stat");
  ProcStat ps;
  return text.ok() && ParseProcStat(*text, &ps) && ps.state != 'Z' && ps.state != 'X';
}

std::string Who(pid_t tid) { return "thread " + std::to_string(tid); }

}  // namespace

Status AttachStoppedThreads(pid_t pid, std::vector<std::unique_ptr<Tracee>>* threads) {
  Result<std::vector<pid_t>> tids = ListTasks(pid);
  if (!tids.ok()) return tids.status();
  for (pid_t tid : *tids) {
    if (tid == pid) continue;
    auto t = std::make_unique<Tracee>(tid, pid);
    Status st = t->Attach();
    if (!st.ok() && ThreadLives(pid, tid)) return st.Prefixed(Who(tid) + " of pid " + std::to_string(pid) + ": ");
    if (st.ok()) threads->push_back(std::move(t));
  }
  return Status::Ok();
}

Status SeizeThreads(const Tracee& leader, std::vector<std::unique_ptr<Tracee>>* threads) {
  const pid_t pid = leader.pid();
  std::set<pid_t> held{pid};
  for (const auto& t : *threads) {
    held.insert(t->pid());
    if (t->waited()) continue;
    Status st = t->WaitSeized();  // attached before the leader lifted its group stop
    if (!st.ok()) return st.Prefixed(Who(t->pid()) + " of pid " + std::to_string(pid) + ": ");
    t->HoldOnThisCpu();
  }
  for (int pass = 0; pass < 1000; ++pass) {
    Result<std::vector<pid_t>> tids = ListTasks(pid);
    if (!tids.ok()) return tids.status();
    bool found = false;
    for (pid_t tid : *tids) {
      if (held.count(tid)) continue;
      auto t = std::make_unique<Tracee>(tid, pid);
      Status st = t->Seize();
      if (!st.ok()) {
        if (!ThreadLives(pid, tid)) continue;  // it ended between the list and the seize
        return st.Prefixed(Who(tid) + " of pid " + std::to_string(pid) + ": ");
      }
      t->HoldOnThisCpu();
      held.insert(tid);
      threads->push_back(std::move(t));
      found = true;
    }
    if (!found) return Status::Ok();
  }
  return Status::Error("pid " + std::to_string(pid) + " keeps making threads faster than they can be held");
}

Status DumpThread(Tracee& t, uint64_t syscall_ip, uint64_t scratch, pb::ThreadImage* out) {
  out->set_tid(t.pid());
  user_regs_struct regs;
  Status st = t.GetRegs(&regs);
  if (!st.ok()) return st;
  t.NameRestartedCall(&regs);  // the call a restore issues again
  out->set_gpregs(std::string(reinterpret_cast<const char*>(&regs), sizeof(regs)));
  Result<std::string> xs = t.GetXstate();
  if (!xs.ok()) return xs.status();
  out->set_xsave(*xs);
  t.set_syscall_ip(syscall_ip);
  st = t.BlockSignals();
  if (st.ok()) st = RequeueSignals(t, scratch, t.stolen_signals());
  if (st.ok()) st = DumpThreadSignals(t, scratch, out);
  if (st.ok()) st = DumpThreadMisc(t, scratch, out);
  if (st.ok()) st = DumpSched(t, out);
  return st.ok() ? st : st.Prefixed(Who(t.pid()) + ": ");
}

namespace {

// One thread with TID `tid` in the leader's process, traced and held.
Result<std::unique_ptr<Tracee>> MakeThread(Tracee& leader, uint64_t scratch, pid_t tid, const PidAsker& ask_pid) {
  clone_args args;
  memset(&args, 0, sizeof(args));
  args.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
  const pid_t want = tid;
  args.set_tid = scratch + kSetTidAt;
  args.set_tid_size = 1;
  Status st = leader.WriteMemory(scratch + kSetTidAt, &want, sizeof(want));
  if (st.ok()) st = leader.WriteMemory(scratch, &args, sizeof(args));
  if (!st.ok()) return st;
  Result<long> r = leader.CloneThread(scratch, sizeof(args));
  if (!r.ok()) return r.status();
  if (*r == -EEXIST) return Status::Error(StatusCode::kBusy, "tid " + std::to_string(tid) + " is taken");
  if (*r == -EPERM && ask_pid) {
    // No right to choose: the next TID the kernel gives, made to be ours.
    args.set_tid = 0;
    args.set_tid_size = 0;
    st = leader.WriteMemory(scratch, &args, sizeof(args));
    for (int attempt = 0; st.ok() && attempt < kTidAttempts; ++attempt) {
      if (access(("/proc/" + std::to_string(tid)).c_str(), F_OK) == 0) {
        return Status::Error(StatusCode::kBusy, "tid " + std::to_string(tid) + " is taken");
      }
      st = ask_pid(tid);
      if (!st.ok()) break;
      r = leader.CloneThread(scratch, sizeof(args));
      if (!r.ok()) return r.status();
      if (*r < 0) break;
      auto t = std::make_unique<Tracee>(static_cast<pid_t>(*r), leader.pid());
      t->set_syscall_ip(leader.syscall_ip());
      st = t->Adopt();
      if (st.ok() && *r == tid) return t;
      if (st.ok()) st = t->ExitThread();  // somebody else's fork came first
    }
    if (!st.ok()) return st.Prefixed("tid " + std::to_string(tid) + ": ");
    if (r.ok() && *r >= 0) {
      return Status::Error(StatusCode::kBusy, "tid " + std::to_string(tid) + ": other processes took it " +
                                                  std::to_string(kTidAttempts) + " times in a row");
    }
  }
  if (*r < 0) return Status::Errno("clone3 of thread " + std::to_string(tid), static_cast<int>(-*r));
  auto t = std::make_unique<Tracee>(static_cast<pid_t>(*r), leader.pid());
  st = t->Adopt();
  if (!st.ok()) return st;
  return t;
}

}  // namespace

Status MakeThreads(Tracee& leader, uint64_t scratch, const pb::ProcessImage& proc, const PidAsker& ask_pid,
                   std::vector<std::unique_ptr<Tracee>>* threads) {
  for (const pb::ThreadImage& ti : proc.threads()) {
    Result<std::unique_ptr<Tracee>> t = MakeThread(leader, scratch, ti.tid(), ask_pid);
    if (!t.ok()) return t.status();
    Tracee& th = **t;
    threads->push_back(std::move(*t));
    th.set_syscall_ip(leader.syscall_ip());
    Status st = RestoreThreadMisc(th, scratch, ti);
    if (st.ok()) st = RestoreThreadSignals(th, scratch, ti);
    if (!st.ok()) return st.Prefixed(Who(ti.tid()) + ": ");
  }
  return Status::Ok();
}

Status DetachProcess(Tracee& leader, const std::vector<std::unique_ptr<Tracee>>& threads, bool stopped) {
  // A thread attached but never waited for (the leader's seize failed
  // after it) is not in a stop yet, and only a stopped tracee detaches.
  for (const auto& t : threads) {
    if (!t->waited()) (void)t->WaitSeized();
  }
  Status st;
  if (!stopped) {
    for (const auto& t : threads) {
      Status d = t->Detach();
      if (st.ok() && !d.ok()) st = d;
    }
    Status d = leader.Detach(0);
    return st.ok() ? d : st;
  }
  // Stopped: the leader takes its SIGSTOP first, which makes the group
  // stop pending for every thread; a thread let go before that would run.
  st = leader.Detach(SIGSTOP);
  for (int i = 0; st.ok() && i < 1000 && ReadProcState(leader.pid()) != 'T'; ++i) usleep(1000);
  for (const auto& t : threads) {
    Status d = t->Detach();
    if (st.ok() && !d.ok()) st = d;
  }
  return st;
}

Status FinishThread(Tracee& t, const pb::ThreadImage& ti, bool from_outside) {
  if (ti.gpregs().size() != sizeof(user_regs_struct)) return Status::Error(Who(ti.tid()) + ": corrupt registers in image");
  user_regs_struct regs;
  memcpy(&regs, ti.gpregs().data(), sizeof(regs));
  Status st = t.SetSigmask(ti.blocked());
  if (st.ok()) st = t.SetXstate(ti.xsave());
  if (st.ok()) st = t.SetRegs(Tracee::ResumeRegs(regs, false));
  if (st.ok()) st = RestoreSched(t.pid(), ti, from_outside);
  if (st.ok()) t.KeepAffinity();
  return st.ok() ? st : st.Prefixed(Who(ti.tid()) + ": ");
}

}  // namespace roam
