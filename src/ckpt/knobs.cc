// Per-process knobs: settings a process (or its owner) set and can read
// back, which a restored process must find as it left them.
//   oom_score_adj, coredump_filter   /proc/PID files, read and written from outside
//   transparent huge pages off       PR_GET/SET_THP_DISABLE (with PR_THP_DISABLE_EXCEPT_ADVISED)
//   timer slack                      PR_GET/SET_TIMERSLACK
//   machine-check kill policy        PR_MCE_KILL_GET / PR_MCE_KILL
//   TSC access                       PR_GET/SET_TSC
// The prctl ones are asked and set by injected calls: they act on the
// calling process only.
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <cstdlib>
#include <string>

#include "ckpt/task_state.h"
#include "common/file_util.h"

#ifndef PR_THP_DISABLE_EXCEPT_ADVISED
#define PR_THP_DISABLE_EXCEPT_ADVISED (1 << 1)
#endif

namespace roam {

namespace {

std::string KnobPath(pid_t pid, const char* name) { return "/proc/" + std::to_string(pid) + "/" + name; }

Result<long long> ReadKnob(pid_t pid, const char* name, int base) {
  Result<std::string> text = ReadFile(KnobPath(pid, name));
  if (!text.ok()) return text.status();
  char* end = nullptr;
  long long v = std::strtoll(text->c_str(), &end, base);
  if (end == text->c_str()) return Status::Error(KnobPath(pid, name) + ": not a number");
  return v;
}

}  // namespace

Status DumpKnobs(Tracee& t, uint64_t scratch, pb::ProcessImage* proc) {
  const pid_t pid = t.pid();
  pb::Knobs* k = proc->mutable_knobs();
  Result<long long> oom = ReadKnob(pid, "oom_score_adj", 10);
  if (!oom.ok()) return oom.status();
  k->set_oom_score_adj(static_cast<int32_t>(*oom));
  Result<long long> filter = ReadKnob(pid, "coredump_filter", 16);
  if (!filter.ok()) return filter.status();
  k->set_coredump_filter(static_cast<uint64_t>(*filter));
  Result<long> r = t.SyscallOk("prctl PR_GET_THP_DISABLE", SYS_prctl, PR_GET_THP_DISABLE, 0, 0, 0, 0);
  if (!r.ok()) return r.status();
  k->set_thp_disable(static_cast<int32_t>(*r));
  r = t.SyscallOk("prctl PR_GET_TIMERSLACK", SYS_prctl, PR_GET_TIMERSLACK, 0, 0, 0, 0);
  if (!r.ok()) return r.status();
  k->set_timer_slack_ns(static_cast<uint64_t>(*r));
  r = t.SyscallOk("prctl PR_MCE_KILL_GET", SYS_prctl, PR_MCE_KILL_GET, 0, 0, 0, 0);
  if (!r.ok()) return r.status();
  k->set_mce_kill(static_cast<int32_t>(*r));
  r = t.SyscallOk("prctl PR_GET_TSC", SYS_prctl, PR_GET_TSC, scratch, 0, 0, 0);
  int32_t tsc = 0;
  if (r.ok()) {
    Status st = t.ReadMemory(scratch, &tsc, sizeof tsc);
    if (!st.ok()) return st;
  }
  k->set_tsc(tsc);
  return Status::Ok();
}

Status RestoreKnobs(Tracee& t, const pb::ProcessImage& proc, bool from_outside) {
  if (!proc.has_knobs()) return Status::Ok();
  const pb::Knobs& k = proc.knobs();
  const pid_t pid = t.pid();
  // Lowering oom_score_adj needs CAP_SYS_RESOURCE: a rebuild in place (the
  // user's own process) only raises it, as the user could.
  Result<long long> oom = ReadKnob(pid, "oom_score_adj", 10);
  if (!oom.ok()) return oom.status();
  if (k.oom_score_adj() != *oom && (from_outside || k.oom_score_adj() > *oom)) {
    Status st = WriteFileInPlace(KnobPath(pid, "oom_score_adj"), std::to_string(k.oom_score_adj()));
    if (!st.ok()) return st.Prefixed("oom_score_adj: ");
  }
  char filter[32];
  snprintf(filter, sizeof filter, "0x%llx", static_cast<unsigned long long>(k.coredump_filter()));
  Status st = WriteFileInPlace(KnobPath(pid, "coredump_filter"), filter);
  if (!st.ok()) return st.Prefixed("coredump_filter: ");
  Result<long> r = 0L;
  if (k.thp_disable() & 1) {
    r = t.SyscallOk("prctl PR_SET_THP_DISABLE", SYS_prctl, PR_SET_THP_DISABLE, 1,
                    static_cast<uint64_t>(k.thp_disable() & PR_THP_DISABLE_EXCEPT_ADVISED), 0, 0);
  }
  if (r.ok() && k.timer_slack_ns() != 0) {
    r = t.SyscallOk("prctl PR_SET_TIMERSLACK", SYS_prctl, PR_SET_TIMERSLACK, k.timer_slack_ns(), 0, 0, 0);
  }
  if (r.ok() && (k.mce_kill() == PR_MCE_KILL_EARLY || k.mce_kill() == PR_MCE_KILL_LATE)) {
    r = t.SyscallOk("prctl PR_MCE_KILL", SYS_prctl, PR_MCE_KILL, PR_MCE_KILL_SET, static_cast<uint64_t>(k.mce_kill()),
                    0, 0);
  }
  if (r.ok() && k.tsc() == PR_TSC_SIGSEGV) r = t.SyscallOk("prctl PR_SET_TSC", SYS_prctl, PR_SET_TSC, PR_TSC_SIGSEGV, 0, 0, 0);
  return r.status();
}

}  // namespace roam
