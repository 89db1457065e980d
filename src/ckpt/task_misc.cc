// The small things a process is made of besides memory, files, signals,
// timers and credentials: rseq, robust futex list, clear_child_tid,
// personality, name, dumpable, no_new_privs, parent-death signal,
// subreaper, strict seccomp, rlimits, cwd, root and umask.
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "ckpt/task_state.h"
#include "common/file_util.h"
#include "common/proc_status.h"

#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif

namespace roam {

namespace {

struct RseqConfig {
  uint64_t rseq_abi_pointer;
  uint32_t rseq_abi_size;
  uint32_t signature;
  uint32_t flags;
  uint32_t pad;
};

Result<RseqConfig> GetRseq(pid_t pid) {
  RseqConfig conf{};
  if (ptrace(static_cast<__ptrace_request>(PTRACE_GET_RSEQ_CONFIGURATION), pid, sizeof(conf), &conf) < 0) {
    return Status::Errno("ptrace get rseq configuration of pid " + std::to_string(pid));
  }
  return conf;
}

Result<std::string> Readlink(const std::string& path) {
  char buf[4096];
  ssize_t n = readlink(path.c_str(), buf, sizeof(buf) - 1);
  if (n < 0) return Status::Errno("readlink " + path);
  return std::string(buf, static_cast<size_t>(n));
}

Status WriteString(Tracee& t, uint64_t at, const std::string& s) {
  return t.WriteMemory(at, s.c_str(), s.size() + 1);
}

// rseq, robust list and clear_child_tid: per thread (the Image is the
// leader's process image or a thread's).
template <typename Image>
Status DumpTaskIds(Tracee& t, uint64_t scratch, Image* out) {
  const pid_t pid = t.pid();
  Result<RseqConfig> rseq = GetRseq(pid);
  if (!rseq.ok()) return rseq.status();
  out->set_rseq_addr(rseq->rseq_abi_pointer);
  out->set_rseq_len(rseq->rseq_abi_size);
  out->set_rseq_flags(rseq->flags);
  out->set_rseq_sig(rseq->signature);

  uint64_t head = 0;
  size_t len = 0;
  if (syscall(SYS_get_robust_list, pid, &head, &len) != 0) return Status::Errno("get_robust_list pid " + std::to_string(pid));
  out->set_robust_list(head);
  out->set_robust_list_len(len);

  Result<long> r = t.SyscallOk("prctl PR_GET_TID_ADDRESS", SYS_prctl, PR_GET_TID_ADDRESS, scratch);
  if (!r.ok()) return r.status();
  uint64_t tid_addr = 0;
  Status st = t.ReadMemory(scratch, &tid_addr, sizeof(tid_addr));
  if (!st.ok()) return st;
  out->set_clear_child_tid(tid_addr);
  return Status::Ok();
}

template <typename Image>
Status RestoreTaskIds(Tracee& t, const Image& in) {
  Result<long> r = 0L;
  if (in.robust_list() != 0) r = t.SyscallOk("set_robust_list", SYS_set_robust_list, in.robust_list(), in.robust_list_len());
  if (r.ok()) r = t.SyscallOk("set_tid_address", SYS_set_tid_address, in.clear_child_tid());
  return r.status();
}

}  // namespace

Status DumpThreadMisc(Tracee& t, uint64_t scratch, pb::ThreadImage* thread) {
  Result<std::string> comm = ReadFile("/proc/" + std::to_string(t.tgid()) + "/task/" + std::to_string(t.pid()) + "/comm");
  if (!comm.ok()) return comm.status();
  if (!comm->empty() && comm->back() == '\n') comm->pop_back();
  thread->set_comm(*comm);
  return DumpTaskIds(t, scratch, thread);
}

Status RestoreThreadMisc(Tracee& t, uint64_t scratch, const pb::ThreadImage& thread) {
  Status st = WriteString(t, scratch, thread.comm().substr(0, 15));
  if (st.ok()) st = t.SyscallOk("prctl PR_SET_NAME", SYS_prctl, PR_SET_NAME, scratch).status();
  if (st.ok()) st = RestoreTaskIds(t, thread);
  if (st.ok()) st = RestoreRseq(t, thread);
  return st;
}

Status DumpTaskMisc(Tracee& t, uint64_t scratch, pb::ProcessImage* proc) {
  pid_t pid = t.pid();
  std::string base = "/proc/" + std::to_string(pid);
  Status st = DumpTaskIds(t, scratch, proc);
  if (!st.ok()) return st;

  Result<long> r = t.SyscallOk("prctl PR_GET_DUMPABLE", SYS_prctl, PR_GET_DUMPABLE);
  if (!r.ok()) return r.status();
  proc->set_dumpable(static_cast<int32_t>(*r));
  int32_t value = 0;
  r = t.SyscallOk("prctl PR_GET_PDEATHSIG", SYS_prctl, PR_GET_PDEATHSIG, scratch);
  if (r.ok()) st = t.ReadMemory(scratch, &value, sizeof(value));
  if (!r.ok() || !st.ok()) return r.ok() ? st : r.status();
  proc->set_pdeathsig(value);
  r = t.SyscallOk("prctl PR_GET_CHILD_SUBREAPER", SYS_prctl, PR_GET_CHILD_SUBREAPER, scratch);
  if (r.ok()) st = t.ReadMemory(scratch, &value, sizeof(value));
  if (!r.ok() || !st.ok()) return r.ok() ? st : r.status();
  proc->set_child_subreaper(value != 0);

  Result<std::string> pers = ReadFile(base + "/personality");
  if (!pers.ok()) return pers.status();
  proc->set_personality(static_cast<uint32_t>(strtoul(pers->c_str(), nullptr, 16)));

  // /proc/PID/limits, not prlimit(2): root here may lack CAP_SYS_RESOURCE,
  // which prlimit needs on another user's process.
  Result<std::string> limits_text = ReadFile(base + "/limits");
  if (!limits_text.ok()) return limits_text.status();
  Result<std::vector<ProcLimit>> limits = ParseProcLimits(*limits_text);
  if (!limits.ok()) return Status::Error("pid " + std::to_string(pid) + " " + limits.status().message());
  for (size_t res = 0; res < limits->size() && res < RLIM_NLIMITS; ++res) {
    pb::Rlimit* out = proc->add_rlimits();
    out->set_resource(static_cast<int32_t>(res));
    out->set_cur((*limits)[res].soft);
    out->set_max((*limits)[res].hard);
  }
  Result<std::string> cwd = Readlink(base + "/cwd");
  Result<std::string> root = Readlink(base + "/root");
  if (!cwd.ok()) return cwd.status();
  if (!root.ok()) return root.status();
  // A removed one keeps its old path here; the caller adds it as a deleted
  // directory (cwd_file) while the link still reads " (deleted)".
  proc->set_cwd(LinkDeleted(*cwd) ? cwd->substr(0, cwd->size() - strlen(" (deleted)")) : *cwd);
  proc->set_root(*root);
  Result<std::string> auxv = ReadFile(base + "/auxv");
  if (!auxv.ok()) return auxv.status();
  proc->mutable_mm()->set_auxv(*auxv);
  return Status::Ok();
}

Status RestoreTaskMisc(Tracee& t, uint64_t scratch, const pb::ProcessImage& proc, int cwd_fd) {
  Result<long> r = t.SyscallOk("personality", SYS_personality, proc.personality());
  if (r.ok()) {
    Status st = WriteString(t, scratch, proc.comm().substr(0, 15));
    r = st.ok() ? t.SyscallOk("prctl PR_SET_NAME", SYS_prctl, PR_SET_NAME, scratch) : st;
  }
  if (r.ok()) r = t.SyscallOk("prctl PR_SET_DUMPABLE", SYS_prctl, PR_SET_DUMPABLE, proc.dumpable());
  if (r.ok()) r = t.SyscallOk("prctl PR_SET_PDEATHSIG", SYS_prctl, PR_SET_PDEATHSIG, proc.pdeathsig());
  if (r.ok() && proc.child_subreaper()) r = t.SyscallOk("prctl PR_SET_CHILD_SUBREAPER", SYS_prctl, PR_SET_CHILD_SUBREAPER, 1);
  if (r.ok()) {
    Status st = RestoreTaskIds(t, proc);
    if (!st.ok()) r = st;
  }
  if (r.ok()) r = t.SyscallOk("umask", SYS_umask, proc.umask());
  if (r.ok() && cwd_fd >= 0) {
    r = t.SyscallOk("fchdir to its removed working directory " + proc.cwd(), SYS_fchdir, cwd_fd);
  } else if (r.ok()) {
    Status st = WriteString(t, scratch, proc.cwd());
    r = st.ok() ? t.SyscallOk("chdir " + proc.cwd(), SYS_chdir, scratch) : st;
  }
  if (r.ok() && proc.root() != "/") {
    Status st = WriteString(t, scratch, proc.root());
    r = st.ok() ? t.SyscallOk("chroot " + proc.root(), SYS_chroot, scratch) : st;
  }
  if (r.ok() && proc.no_new_privs()) r = t.SyscallOk("prctl PR_SET_NO_NEW_PRIVS", SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  return r.status();
}

Status DropSeedRseq(Tracee& t) {
  Result<RseqConfig> conf = GetRseq(t.pid());
  if (!conf.ok()) return conf.status();
  if (conf->rseq_abi_pointer == 0) return Status::Ok();
  return t.SyscallOk("rseq unregister", SYS_rseq, conf->rseq_abi_pointer, conf->rseq_abi_size, 1 /* UNREGISTER */,
                     conf->signature)
      .status();
}

template <typename Image>
Status RestoreRseq(Tracee& t, const Image& in) {
  if (in.rseq_addr() == 0) return Status::Ok();
  return t.SyscallOk("rseq register", SYS_rseq, in.rseq_addr(), in.rseq_len(), 0, in.rseq_sig()).status();
}
template Status RestoreRseq(Tracee&, const pb::ProcessImage&);
template Status RestoreRseq(Tracee&, const pb::ThreadImage&);

Status RestoreRlimits(Tracee& t, uint64_t scratch, const pb::ProcessImage& proc, bool from_outside) {
  for (const pb::Rlimit& l : proc.rlimits()) {
    rlimit lim{l.cur(), l.max()};
    Result<long> r = 0L;
    if (from_outside) {
      // prlimit on the seed's PID: no injected call (16 of them were ~0.6 ms
      // of the frozen window).
      r = prlimit(t.pid(), static_cast<__rlimit_resource>(l.resource()), &lim, nullptr) == 0 ? 0L : -errno;
    } else {
      Status st = t.WriteMemory(scratch, &lim, sizeof(lim));
      if (!st.ok()) return st;
      r = t.Syscall(SYS_prlimit64, 0, static_cast<uint64_t>(l.resource()), scratch, 0);
    }
    if (!r.ok()) return r.status();
    if (*r < 0) {
      return Status::Errno("rlimit " + std::to_string(l.resource()) + " (" + std::to_string(l.cur()) + "/" +
                               std::to_string(l.max()) + ") of pid " + std::to_string(proc.pid()) +
                               (*r == -EPERM ? ": above this restorer's own hard limit" : ""),
                           static_cast<int>(-*r));
    }
  }
  return Status::Ok();
}

Status RestoreSeccomp(Tracee& t, const pb::ProcessImage& proc) {
  if (proc.seccomp_mode() == 0) return Status::Ok();
  if (proc.seccomp_mode() != SECCOMP_MODE_STRICT) return Status::Error(StatusCode::kCantMove, "seccomp filters are not supported");
  return t.SyscallOk("prctl PR_SET_SECCOMP", SYS_prctl, PR_SET_SECCOMP, SECCOMP_MODE_STRICT).status();
}

}  // namespace roam
