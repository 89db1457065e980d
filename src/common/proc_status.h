// /proc/PID/status: the identity, credentials, signal state and confinement
// of a process, as the checkpoint engine dumps them. Pure; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace roam {

struct ProcStatus {
  std::string name;    // the command, with the kernel's "\n" and "\\" escapes undone
  uint32_t umask = 0;
  char state = '?';    // R, S, D, Z, T, ...
  int tgid = 0, pid = 0, ppid = 0, tracer_pid = 0;
  uint32_t uid[4] = {}, gid[4] = {};  // real, effective, saved, filesystem
  std::vector<uint32_t> groups;       // supplementary groups
  // The ids in each PID namespace from the reader's /proc mount's namespace
  // down to the process's own (the last); 0 where a process is not visible.
  std::vector<int> ns_pid, ns_pgid, ns_sid;
  int threads = 0;
  // Signal sets, bit N-1 for signal N: pending for the thread, pending for
  // the process, blocked, ignored, caught.
  uint64_t sig_pnd = 0, shd_pnd = 0, sig_blk = 0, sig_ign = 0, sig_cgt = 0;
  uint64_t cap_inh = 0, cap_prm = 0, cap_eff = 0, cap_bnd = 0, cap_amb = 0;
  bool no_new_privs = false;
  int seccomp = 0;          // SECCOMP_MODE_*: 0 off, 1 strict, 2 filter
  int seccomp_filters = 0;  // filters attached
};

// Parses the text of /proc/PID/status. Lines it does not use are skipped.
// REQUIRES of the text: every line that ProcStatus holds, as Linux >= 5.9
// built with CONFIG_SECCOMP prints them; a missing or malformed one is an
// error naming it (no value is ever guessed).
Result<ProcStatus> ParseProcStatus(const std::string& text);

// A process's place in the tree: the two lines of /proc/PID/status that a
// zombie's has too (ParseProcStatus wants some it lacks, Umask first).
struct ProcLineage {
  int tgid = 0, ppid = 0;
};
// REQUIRES of the text: its Tgid and PPid lines.
Result<ProcLineage> ParseProcLineage(const std::string& text);

// One line of /proc/PID/limits: soft and hard values, RLIM_INFINITY for
// "unlimited". The kernel prints the resources in RLIMIT_* order.
struct ProcLimit {
  uint64_t soft = 0;
  uint64_t hard = 0;
};

// Parses /proc/PID/limits (a header line, then one line per resource,
// fixed-width columns: name 26, soft 21, hard 21). Readable by root even
// when prlimit(2) on another user's process is not (no CAP_SYS_RESOURCE).
Result<std::vector<ProcLimit>> ParseProcLimits(const std::string& text);

}  // namespace roam
