// Interval timers (setitimer) and POSIX timers (timer_create), read with
// getitimer/timer_gettime injected into the process, which report the time
// left; restored relative to the moment of restore. POSIX timers keep their
// ids through PR_TIMER_CREATE_RESTORE_IDS (Linux 6.16+).
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/time.h>

#include <cstring>

#include "ckpt/task_state.h"
#include "common/file_util.h"
#include "common/proc_timers.h"

#ifndef PR_TIMER_CREATE_RESTORE_IDS
#define PR_TIMER_CREATE_RESTORE_IDS 77
#define PR_TIMER_CREATE_RESTORE_IDS_OFF 0
#define PR_TIMER_CREATE_RESTORE_IDS_ON 1
#endif
#ifndef SIGEV_THREAD_ID
#define SIGEV_THREAD_ID 4
#endif

namespace roam {

namespace {

int64_t Ns(const timespec& ts) { return ts.tv_sec * 1000000000LL + ts.tv_nsec; }
int64_t Ns(const timeval& tv) { return tv.tv_sec * 1000000000LL + tv.tv_usec * 1000LL; }
timespec Ts(int64_t ns) { return timespec{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)}; }
timeval Tv(int64_t ns) {
  return timeval{static_cast<time_t>(ns / 1000000000), static_cast<suseconds_t>((ns % 1000000000 + 999) / 1000)};
}

// Linux adds one tick to a CPU-time itimer when it is set (so that it never
// fires early); a restored one would lose that tick each time. Measured
// once, on this process: set 10 s, read back.
int64_t CpuItimerSlackNs() {
  static int64_t slack = -1;
  if (slack >= 0) return slack;
  itimerval set{{0, 0}, {10, 0}}, got{}, off{};
  slack = 0;
  if (setitimer(ITIMER_PROF, &set, nullptr) == 0 && getitimer(ITIMER_PROF, &got) == 0) {
    int64_t d = Ns(got.it_value) - 10000000000LL;
    if (d > 0 && d < 100000000) slack = d;
  }
  setitimer(ITIMER_PROF, &off, nullptr);
  return slack;
}

struct KernelSigevent {
  uint64_t value;
  int32_t signo;
  int32_t notify;
  int32_t tid;
  int32_t pad[11];
};
static_assert(sizeof(KernelSigevent) == 64);

}  // namespace

Status DumpTimers(Tracee& t, uint64_t scratch, pb::ProcessImage* proc) {
  for (int which : {ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF}) {
    Result<long> r = t.SyscallOk("getitimer", SYS_getitimer, which, scratch);
    if (!r.ok()) return r.status();
    itimerval v;
    Status st = t.ReadMemory(scratch, &v, sizeof(v));
    if (!st.ok()) return st;
    if (Ns(v.it_value) == 0 && Ns(v.it_interval) == 0) continue;
    pb::ITimer* it = proc->add_itimers();
    it->set_which(which);
    it->set_value_ns(Ns(v.it_value));
    it->set_interval_ns(Ns(v.it_interval));
  }
  Result<std::string> text = ReadFile("/proc/" + std::to_string(t.pid()) + "/timers");
  if (!text.ok()) return text.status();
  Result<std::vector<PosixTimerInfo>> timers = ParseProcTimers(*text);
  if (!timers.ok()) return Status::Error("pid " + std::to_string(t.pid()) + " timers: " + timers.status().message());
  for (const PosixTimerInfo& ti : *timers) {
    Result<long> r = t.SyscallOk("timer_gettime", SYS_timer_gettime, ti.id, scratch);
    if (!r.ok()) return r.status();
    itimerspec v;
    Status st = t.ReadMemory(scratch, &v, sizeof(v));
    if (!st.ok()) return st;
    Result<long> over = t.SyscallOk("timer_getoverrun", SYS_timer_getoverrun, ti.id);
    if (!over.ok()) return over.status();
    pb::PosixTimer* pt = proc->add_posix_timers();
    pt->set_id(ti.id);
    pt->set_clockid(ti.clockid);
    pt->set_signo(ti.signo);
    pt->set_sigval(ti.sigval);
    int notify = ti.notify == "none" ? SIGEV_NONE : SIGEV_SIGNAL;
    if (ti.notify_to_thread) notify |= SIGEV_THREAD_ID;
    pt->set_notify(notify);
    pt->set_notify_tid(ti.notify_tid);
    pt->set_value_ns(Ns(v.it_value));
    pt->set_interval_ns(Ns(v.it_interval));
    pt->set_overrun(static_cast<int32_t>(*over));
  }
  return Status::Ok();
}

Status RestoreTimers(Tracee& t, uint64_t scratch, const pb::ProcessImage& proc) {
  for (const pb::ITimer& it : proc.itimers()) {
    int64_t value = it.value_ns() == 0 ? it.interval_ns() : it.value_ns();
    if (it.which() != ITIMER_REAL && value > CpuItimerSlackNs() + 1000) value -= CpuItimerSlackNs();
    itimerval v{Tv(it.interval_ns()), Tv(value)};
    Status st = t.WriteMemory(scratch, &v, sizeof(v));
    if (!st.ok()) return st;
    Result<long> r = t.SyscallOk("setitimer", SYS_setitimer, it.which(), scratch, 0);
    if (!r.ok()) return r.status();
  }
  if (proc.posix_timers().empty()) return Status::Ok();
  Result<long> on = t.SyscallOk("prctl PR_TIMER_CREATE_RESTORE_IDS", SYS_prctl, PR_TIMER_CREATE_RESTORE_IDS,
                                PR_TIMER_CREATE_RESTORE_IDS_ON, 0, 0, 0);
  if (!on.ok()) return on.status();
  for (const pb::PosixTimer& pt : proc.posix_timers()) {
    KernelSigevent ev;
    memset(&ev, 0, sizeof(ev));
    ev.value = pt.sigval();
    ev.signo = pt.signo();
    ev.notify = pt.notify();
    ev.tid = (pt.notify() & SIGEV_THREAD_ID) ? t.pid() : 0;
    int32_t id = pt.id();
    Status st = t.WriteMemory(scratch, &ev, sizeof(ev));
    if (st.ok()) st = t.WriteMemory(scratch + 128, &id, sizeof(id));
    if (!st.ok()) return st;
    Result<long> r = t.SyscallOk("timer_create id " + std::to_string(id), SYS_timer_create, pt.clockid(), scratch,
                                 scratch + 128);
    if (!r.ok()) return r.status();
    int32_t got = -1;
    st = t.ReadMemory(scratch + 128, &got, sizeof(got));
    if (!st.ok()) return st;
    if (got != id) return Status::Error("timer_create gave id " + std::to_string(got) + " for timer " + std::to_string(id));
    if (pt.value_ns() == 0 && pt.interval_ns() == 0) continue;
    itimerspec v{Ts(pt.interval_ns()), Ts(pt.value_ns() == 0 ? pt.interval_ns() : pt.value_ns())};
    st = t.WriteMemory(scratch, &v, sizeof(v));
    if (!st.ok()) return st;
    r = t.SyscallOk("timer_settime", SYS_timer_settime, id, 0, scratch, 0);
    if (!r.ok()) return r.status();
  }
  Result<long> off = t.SyscallOk("prctl PR_TIMER_CREATE_RESTORE_IDS off", SYS_prctl, PR_TIMER_CREATE_RESTORE_IDS,
                                 PR_TIMER_CREATE_RESTORE_IDS_OFF, 0, 0, 0);
  return off.status();
}

}  // namespace roam
