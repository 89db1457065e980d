// Scheduling state: CPU affinity, nice, policy and static priority. All of
// it is read and set from outside with the PID, never by injection.
//
// The affinity matters beyond fidelity: the engine holds the processes it
// works on on its own thread's CPU (Tracee::HoldOnThisCpu) and roamd pins
// that thread (EngineWorker), so a seed has a one-CPU mask while it is
// rebuilt; every restored process gets its recorded mask back here.
#include <sched.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstring>

#include "ckpt/task_state.h"

namespace roam {

namespace {

bool RealTime(int policy) {
  policy &= ~SCHED_RESET_ON_FORK;
  return policy == SCHED_FIFO || policy == SCHED_RR || policy == SCHED_DEADLINE;
}

cpu_set_t EveryCpu() {
  cpu_set_t all;
  CPU_ZERO(&all);
  for (int c = 0; c < CPU_SETSIZE; ++c) CPU_SET(c, &all);
  return all;
}

}  // namespace

template <typename Image>
Status DumpSched(const Tracee& t, Image* proc) {
  const pid_t pid = t.pid();
  const std::string who = "pid " + std::to_string(pid);
  cpu_set_t mask;
  if (t.original_affinity() != nullptr) {
    mask = *t.original_affinity();
  } else if (sched_getaffinity(pid, sizeof(mask), &mask) != 0) {
    return Status::Errno(who + ": sched_getaffinity");
  }
  proc->set_cpu_affinity(std::string(reinterpret_cast<const char*>(&mask), sizeof(mask)));
  errno = 0;
  int nice = getpriority(PRIO_PROCESS, static_cast<id_t>(pid));
  if (nice == -1 && errno != 0) return Status::Errno(who + ": getpriority");
  proc->set_nice(nice);
  int policy = sched_getscheduler(pid);
  if (policy < 0) return Status::Errno(who + ": sched_getscheduler");
  if ((policy & ~SCHED_RESET_ON_FORK) == SCHED_DEADLINE) {
    return Status::Error(StatusCode::kCantMove, who + ": SCHED_DEADLINE is not supported");
  }
  sched_param param{};
  if (sched_getparam(pid, &param) != 0) return Status::Errno(who + ": sched_getparam");
  proc->set_sched_policy(policy);
  proc->set_sched_priority(param.sched_priority);
  return Status::Ok();
}

template <typename Image>
Status RestoreSched(pid_t pid, const Image& proc, bool from_outside) {
  const std::string who = "pid " + std::to_string(pid);
  // Affinity: the recorded CPUs that exist here (the kernel intersects with
  // what is online and allowed), else all of them.
  cpu_set_t mask = EveryCpu();
  if (proc.cpu_affinity().size() == sizeof(mask)) memcpy(&mask, proc.cpu_affinity().data(), sizeof(mask));
  if (sched_setaffinity(pid, sizeof(mask), &mask) != 0) {
    cpu_set_t all = EveryCpu();
    if (errno != EINVAL || sched_setaffinity(pid, sizeof(all), &all) != 0) {
      return Status::Errno(who + ": sched_setaffinity");
    }
  }
  errno = 0;
  int now = getpriority(PRIO_PROCESS, static_cast<id_t>(pid));
  if (now == -1 && errno != 0) return Status::Errno(who + ": getpriority");
  const bool policy_ok = from_outside || !RealTime(proc.sched_policy());
  if (policy_ok && sched_getscheduler(pid) != proc.sched_policy()) {
    sched_param param{};
    param.sched_priority = proc.sched_priority();
    if (sched_setscheduler(pid, proc.sched_policy(), &param) != 0) return Status::Errno(who + ": sched_setscheduler");
  }
  if (proc.nice() != now && (from_outside || proc.nice() > now)) {
    if (setpriority(PRIO_PROCESS, static_cast<id_t>(pid), proc.nice()) != 0) return Status::Errno(who + ": setpriority");
  }
  return Status::Ok();
}

template Status DumpSched(const Tracee&, pb::ProcessImage*);
template Status DumpSched(const Tracee&, pb::ThreadImage*);
template Status RestoreSched(pid_t, const pb::ProcessImage&, bool);
template Status RestoreSched(pid_t, const pb::ThreadImage&, bool);

}  // namespace roam
