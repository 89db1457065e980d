// Credentials: real/effective/saved/fs uids and gids, supplementary groups,
// the five capability sets and securebits, the process's and, when they
// differ (a raw setresuid in one thread), a thread's own. Read from /proc/PID/status (and
// PR_GET_SECUREBITS injected); restored in the order that keeps the
// privilege to finish: bounding set, groups, gids, then uids with
// SECBIT_KEEP_CAPS, then the capability sets, ambient set, final securebits.
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <algorithm>

#include "ckpt/task_state.h"
#include "common/file_util.h"
#include "common/proc_status.h"

namespace roam {

namespace {

Status SetCaps(Tracee& t, uint64_t scratch, uint64_t eff, uint64_t prm, uint64_t inh) {
  struct {
    __user_cap_header_struct hdr;
    __user_cap_data_struct data[2];
  } caps = {{_LINUX_CAPABILITY_VERSION_3, 0},
            {{static_cast<uint32_t>(eff), static_cast<uint32_t>(prm), static_cast<uint32_t>(inh)},
             {static_cast<uint32_t>(eff >> 32), static_cast<uint32_t>(prm >> 32), static_cast<uint32_t>(inh >> 32)}}};
  Status st = t.WriteMemory(scratch, &caps, sizeof(caps));
  if (!st.ok()) return st;
  return t.SyscallOk("capset", SYS_capset, scratch, scratch + sizeof(caps.hdr)).status();
}

// The ids, groups and capability sets of `s` into `c`.
void CredsOf(const ProcStatus& s, pb::Creds* c) {
  for (int i = 0; i < 4; ++i) c->add_uids(s.uid[i]);
  for (int i = 0; i < 4; ++i) c->add_gids(s.gid[i]);
  for (uint32_t g : s.groups) c->add_groups(g);
  c->set_cap_inh(s.cap_inh);
  c->set_cap_prm(s.cap_prm);
  c->set_cap_eff(s.cap_eff);
  c->set_cap_bnd(s.cap_bnd);
  c->set_cap_amb(s.cap_amb);
}

}  // namespace

Status DumpCreds(Tracee& t, uint64_t scratch, pb::ProcessImage* proc) {
  Result<std::string> text = ReadFile("/proc/" + std::to_string(t.pid()) + "/status");
  if (!text.ok()) return text.status();
  Result<ProcStatus> s = ParseProcStatus(*text);
  if (!s.ok()) return s.status();
  pb::Creds* c = proc->mutable_creds();
  CredsOf(*s, c);
  Result<long> bits = t.SyscallOk("prctl PR_GET_SECUREBITS", SYS_prctl, PR_GET_SECUREBITS);
  if (!bits.ok()) return bits.status();
  c->set_securebits(static_cast<uint32_t>(*bits));
  proc->set_umask(s->umask);
  proc->set_no_new_privs(s->no_new_privs);
  proc->set_seccomp_mode(s->seccomp);
  return Status::Ok();
}

Status DumpThreadCreds(pid_t pid, pid_t tid, const pb::Creds& process, pb::ThreadImage* out) {
  Result<std::string> text = ReadFile("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/status");
  if (!text.ok()) return text.status();
  Result<ProcStatus> s = ParseProcStatus(*text);
  if (!s.ok()) return s.status();
  pb::Creds own;
  CredsOf(*s, &own);
  own.set_securebits(process.securebits());
  if (own.SerializeAsString() != process.SerializeAsString()) *out->mutable_creds() = own;
  return Status::Ok();
}

Status RestoreCreds(Tracee& t, uint64_t scratch, const pb::Creds& c) {
  if (c.uids_size() != 4 || c.gids_size() != 4) return Status::Error("image without credentials");
  Result<std::string> last = ReadFile("/proc/sys/kernel/cap_last_cap");
  int last_cap = last.ok() ? std::atoi(last->c_str()) : 40;
  for (int cap = 0; cap <= last_cap; ++cap) {
    if (c.cap_bnd() & (1ULL << cap)) continue;
    Result<long> r = t.SyscallOk("prctl PR_CAPBSET_DROP", SYS_prctl, PR_CAPBSET_DROP, cap);
    if (!r.ok()) return r.status();
  }
  std::vector<uint32_t> groups(c.groups().begin(), c.groups().end());
  Status st = groups.empty() ? Status::Ok() : t.WriteMemory(scratch, groups.data(), groups.size() * 4);
  if (!st.ok()) return st;
  Result<long> r = t.SyscallOk("setgroups", SYS_setgroups, groups.size(), scratch);
  if (r.ok()) r = t.SyscallOk("setresgid", SYS_setresgid, c.gids(0), c.gids(1), c.gids(2));
  if (r.ok()) r = t.Syscall(SYS_setfsgid, c.gids(3));
  bool drop_root = c.uids(0) != 0 || c.uids(1) != 0 || c.uids(2) != 0;
  if (r.ok() && drop_root) {
    r = t.SyscallOk("prctl PR_SET_SECUREBITS", SYS_prctl, PR_SET_SECUREBITS, c.securebits() | (1U << 4) /* KEEP_CAPS */);
  }
  if (r.ok()) r = t.SyscallOk("setresuid", SYS_setresuid, c.uids(0), c.uids(1), c.uids(2));
  if (r.ok()) r = t.Syscall(SYS_setfsuid, c.uids(3));
  if (!r.ok()) return r.status();
  // Effective capabilities went with uid 0: take them back from the
  // permitted set for the last privileged step (securebits).
  uint64_t full = c.cap_bnd() | c.cap_prm();
  if (drop_root) {
    st = SetCaps(t, scratch, full, full, c.cap_inh());
    if (!st.ok()) return st;
    r = t.SyscallOk("prctl PR_SET_SECUREBITS", SYS_prctl, PR_SET_SECUREBITS, c.securebits());
    if (!r.ok()) return r.status();
  }
  st = SetCaps(t, scratch, c.cap_eff(), c.cap_prm(), c.cap_inh());
  if (!st.ok()) return st;
  for (int cap = 0; cap <= last_cap; ++cap) {
    if (!(c.cap_amb() & (1ULL << cap))) continue;
    r = t.SyscallOk("prctl PR_CAP_AMBIENT_RAISE", SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap);
    if (!r.ok()) return r.status();
  }
  return Status::Ok();
}

Status CheckCredsUnchanged(pid_t pid, const pb::ProcessImage& proc) {
  Result<std::string> text = ReadFile("/proc/" + std::to_string(pid) + "/status");
  if (!text.ok()) return text.status();
  Result<ProcStatus> s = ParseProcStatus(*text);
  if (!s.ok()) return s.status();
  const pb::Creds& c = proc.creds();
  if (c.uids_size() != 4 || c.gids_size() != 4) return Status::Error("image without credentials");
  for (int i = 0; i < 4; ++i) {
    if (c.uids(i) != s->uid[i]) return Status::Error("its user ids changed since it left (setuid)");
    if (c.gids(i) != s->gid[i]) return Status::Error("its group ids changed since it left (setgid)");
  }
  if (!std::equal(c.groups().begin(), c.groups().end(), s->groups.begin(), s->groups.end())) {
    return Status::Error("its supplementary groups changed since it left");
  }
  for (const pb::ThreadImage& ti : proc.threads()) {
    if (ti.has_creds()) {
      return Status::Error("thread " + std::to_string(ti.tid()) + " has credentials of its own, which a process "
                           "rebuilt in place as its user cannot give it");
    }
  }
  if (c.cap_inh() != s->cap_inh || c.cap_prm() != s->cap_prm || c.cap_eff() != s->cap_eff ||
      c.cap_bnd() != s->cap_bnd || c.cap_amb() != s->cap_amb) {
    return Status::Error("its capabilities changed since it left");
  }
  return Status::Ok();
}

}  // namespace roam
