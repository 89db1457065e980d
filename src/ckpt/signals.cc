// Signals: handlers (rt_sigaction injected, as handler addresses are not in
// /proc), the alternate stack, the blocked mask and the pending queues
// (PTRACE_PEEKSIGINFO, thread and process-wide), queued again at restore
// with rt_sigqueueinfo so that each keeps its siginfo.
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>

#include <algorithm>
#include <cstring>

#include "ckpt/task_state.h"

namespace roam {

namespace {

struct KernelSigaction {
  uint64_t handler;
  uint64_t flags;
  uint64_t restorer;
  uint64_t mask;
};

struct KernelStack {
  uint64_t sp;
  int32_t flags;
  int32_t pad;
  uint64_t size;
};

Status PeekQueue(pid_t pid, bool shared, google::protobuf::RepeatedPtrField<std::string>* out) {
  for (uint64_t off = 0;; off += 32) {
    __ptrace_peeksiginfo_args args{off, shared ? static_cast<uint32_t>(PTRACE_PEEKSIGINFO_SHARED) : 0u, 32};
    siginfo_t infos[32];
    long n = ptrace(PTRACE_PEEKSIGINFO, pid, &args, infos);
    if (n < 0) return Status::Errno("ptrace peeksiginfo pid " + std::to_string(pid));
    for (long i = 0; i < n; ++i) out->Add(std::string(reinterpret_cast<const char*>(&infos[i]), sizeof(siginfo_t)));
    if (n < 32) return Status::Ok();
  }
}

Status Queue(Tracee& t, uint64_t scratch, const std::string& info, bool shared) {
  if (info.size() != sizeof(siginfo_t)) return Status::Error("corrupt siginfo in image");
  siginfo_t si;
  memcpy(&si, info.data(), sizeof(si));
  Status st = t.WriteMemory(scratch, info.data(), info.size());
  if (!st.ok()) return st;
  Result<long> r = shared ? t.SyscallOk("rt_sigqueueinfo", SYS_rt_sigqueueinfo, t.tgid(), si.si_signo, scratch)
                          : t.SyscallOk("rt_tgsigqueueinfo", SYS_rt_tgsigqueueinfo, t.tgid(), t.pid(), si.si_signo, scratch);
  return r.status();
}

// The alternate stack, per thread (the Image is the leader's process image
// or a thread's).
template <typename Image>
Status DumpAltstack(Tracee& t, uint64_t scratch, Image* out) {
  Result<long> r = t.SyscallOk("sigaltstack", SYS_sigaltstack, 0, scratch);
  if (!r.ok()) return r.status();
  KernelStack ks;
  Status st = t.ReadMemory(scratch, &ks, sizeof(ks));
  if (!st.ok()) return st;
  out->set_altstack_sp(ks.sp);
  out->set_altstack_flags(ks.flags);
  out->set_altstack_size(ks.size);
  return Status::Ok();
}

template <typename Image>
Status RestoreAltstack(Tracee& t, uint64_t scratch, const Image& in) {
  if (in.altstack_flags() & SS_DISABLE) return Status::Ok();
  int32_t keep = in.altstack_flags() & static_cast<int32_t>(1U << 31);  // SS_AUTODISARM
  KernelStack ks{in.altstack_sp(), keep, 0, in.altstack_size()};
  Status st = t.WriteMemory(scratch, &ks, sizeof(ks));
  if (!st.ok()) return st;
  return t.SyscallOk("sigaltstack", SYS_sigaltstack, scratch, 0).status();
}

}  // namespace

Status DumpSignals(Tracee& t, uint64_t scratch, pb::ProcessImage* proc) {
  for (int sig = 1; sig <= 64; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    Result<long> r = t.SyscallOk("rt_sigaction " + std::to_string(sig), SYS_rt_sigaction, sig, 0, scratch, 8);
    if (!r.ok()) return r.status();
    KernelSigaction ka;
    Status st = t.ReadMemory(scratch, &ka, sizeof(ka));
    if (!st.ok()) return st;
    if (ka.handler == 0 && ka.flags == 0 && ka.mask == 0) continue;  // default, untouched
    pb::SigAction* a = proc->add_sigactions();
    a->set_signo(sig);
    a->set_handler(ka.handler);
    a->set_flags(ka.flags);
    a->set_restorer(ka.restorer);
    a->set_mask(ka.mask);
  }
  Status st = DumpAltstack(t, scratch, proc);
  if (!st.ok()) return st;
  proc->set_blocked(t.saved_sigmask());
  st = PeekQueue(t.pid(), false, proc->mutable_pending_thread());
  if (st.ok()) st = PeekQueue(t.pid(), true, proc->mutable_pending_shared());
  if (!st.ok()) return st;
  if (t.was_stopped()) {
    // The SIGCONT the engine sent to lift the group stop is not the process's.
    for (auto* queue : {proc->mutable_pending_thread(), proc->mutable_pending_shared()}) {
      for (int i = queue->size() - 1; i >= 0; --i) {
        siginfo_t si;
        memcpy(&si, queue->Get(i).data(), sizeof(si));
        if (si.si_signo == SIGCONT) queue->DeleteSubrange(i, 1);
      }
    }
  }
  return Status::Ok();
}

Status RestoreSignalHandlers(Tracee& t, uint64_t scratch, const pb::ProcessImage& proc) {
  for (const pb::SigAction& a : proc.sigactions()) {
    KernelSigaction ka{a.handler(), a.flags(), a.restorer(), a.mask()};
    Status st = t.WriteMemory(scratch, &ka, sizeof(ka));
    if (!st.ok()) return st;
    Result<long> r = t.SyscallOk("rt_sigaction " + std::to_string(a.signo()), SYS_rt_sigaction, a.signo(), scratch, 0, 8);
    if (!r.ok()) return r.status();
  }
  return RestoreAltstack(t, scratch, proc);
}

Status DumpThreadSignals(Tracee& t, uint64_t scratch, pb::ThreadImage* thread) {
  Status st = DumpAltstack(t, scratch, thread);
  if (!st.ok()) return st;
  thread->set_blocked(t.saved_sigmask());
  return PeekQueue(t.pid(), false, thread->mutable_pending_thread());
}

Status RestoreThreadSignals(Tracee& t, uint64_t scratch, const pb::ThreadImage& thread) {
  Status st = RestoreAltstack(t, scratch, thread);
  for (int i = 0; st.ok() && i < thread.pending_thread_size(); ++i) st = Queue(t, scratch, thread.pending_thread(i), false);
  return st;
}

Status RestorePendingSignals(Tracee& t, uint64_t scratch, const pb::ProcessImage& proc) {
  for (const std::string& si : proc.pending_shared()) {
    Status st = Queue(t, scratch, si, true);
    if (!st.ok()) return st;
  }
  for (const std::string& si : proc.pending_thread()) {
    Status st = Queue(t, scratch, si, false);
    if (!st.ok()) return st;
  }
  return Status::Ok();
}

namespace {

int Signo(const std::string& info) {
  siginfo_t si;
  memcpy(&si, info.data(), sizeof(si));
  return si.si_signo;
}

// Splits what is pending `now` in one queue into the image's entries (each
// matched once, by its whole siginfo) and the rest, which came after.
void SplitQueue(const google::protobuf::RepeatedPtrField<std::string>& image,
                const google::protobuf::RepeatedPtrField<std::string>& now, std::vector<std::string>* dumped,
                std::vector<std::string>* later) {
  std::vector<bool> used(image.size(), false);
  for (const std::string& si : now) {
    int match = -1;
    for (int i = 0; i < image.size() && match < 0; ++i) {
      if (!used[i] && image.Get(i) == si) match = i;
    }
    if (match >= 0) {
      used[match] = true;
      dumped->push_back(si);
    } else {
      later->push_back(si);
    }
  }
}

}  // namespace

Result<DroppedSignals> DropDumpedSignals(Tracee& t, uint64_t scratch, const pb::ProcessImage& proc) {
  DroppedSignals dropped;
  if (proc.pending_thread().empty() && proc.pending_shared().empty() && !t.was_stopped()) return dropped;
  google::protobuf::RepeatedPtrField<std::string> now_thread, now_shared;
  Status st = PeekQueue(t.pid(), false, &now_thread);
  if (st.ok()) st = PeekQueue(t.pid(), true, &now_shared);
  if (!st.ok()) return st;
  std::vector<std::string> later_thread, later_shared;
  SplitQueue(proc.pending_thread(), now_thread, &dropped.thread, &later_thread);
  SplitQueue(proc.pending_shared(), now_shared, &dropped.shared, &later_shared);
  // The SIGCONT that lifted a group stop for the engine is not the
  // process's (the image is stopped): the deputy would pass it on, and the
  // process would run on where it went.
  if (t.was_stopped()) {
    for (auto [later, out] : {std::pair{&later_thread, &dropped.thread}, std::pair{&later_shared, &dropped.shared}}) {
      for (auto it = later->begin(); it != later->end();) {
        if (Signo(*it) != SIGCONT) {
          ++it;
          continue;
        }
        out->push_back(*it);
        it = later->erase(it);
      }
    }
  }
  // The kernel drops every pending instance of a signal when it is set to
  // be ignored (both queues): so each signal of the image's is ignored for
  // a moment, its action put back, and what came later queued again.
  std::vector<int> signos;
  for (const auto* q : {&dropped.thread, &dropped.shared}) {
    for (const std::string& si : *q) {
      const int s = Signo(si);
      if (s != SIGKILL && s != SIGSTOP && std::find(signos.begin(), signos.end(), s) == signos.end())
        signos.push_back(s);
    }
  }
  const KernelSigaction ignore{reinterpret_cast<uint64_t>(SIG_IGN), 0, 0, 0};
  st = t.WriteMemory(scratch, &ignore, sizeof(ignore));
  const uint64_t old = scratch + sizeof(KernelSigaction);
  for (size_t i = 0; st.ok() && i < signos.size(); ++i) {
    const std::string what = "rt_sigaction " + std::to_string(signos[i]);
    st = t.SyscallOk(what, SYS_rt_sigaction, signos[i], scratch, old, 8).status();
    if (st.ok()) st = t.SyscallOk(what, SYS_rt_sigaction, signos[i], old, 0, 8).status();
  }
  auto flushed = [&](const std::string& si) {
    return std::find(signos.begin(), signos.end(), Signo(si)) != signos.end();
  };
  for (const std::string& si : later_shared) {
    if (st.ok() && flushed(si)) st = Queue(t, scratch, si, true);
  }
  for (const std::string& si : later_thread) {
    if (st.ok() && flushed(si)) st = Queue(t, scratch, si, false);
  }
  if (!st.ok()) return st;
  return dropped;
}

Status RequeueDropped(Tracee& t, uint64_t scratch, const DroppedSignals& dropped) {
  for (const std::string& si : dropped.shared) {
    Status st = Queue(t, scratch, si, true);
    if (!st.ok()) return st;
  }
  return RequeueSignals(t, scratch, dropped.thread);
}

Status RequeueSignals(Tracee& t, uint64_t scratch, const std::vector<std::string>& siginfos) {
  for (const std::string& si : siginfos) {
    Status st = Queue(t, scratch, si, false);
    if (!st.ok()) return st;
  }
  return Status::Ok();
}

}  // namespace roam
