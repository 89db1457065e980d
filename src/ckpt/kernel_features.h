// The kernel feature probe behind `roam check`: every kernel interface the
// checkpoint/restore engine relies on, tried for real on the running kernel
// (like `criu check`), and a plain-words report of what is missing.
//
// Probes fork short-lived children, trace them, and read their /proc files.
// Each probe kills and reaps what it started, closes what it opened, and is
// bounded by timeouts, so a probe run leaves no process or fd behind and
// cannot hang. Most probes need root (CAP_SYS_ADMIN, CAP_SYS_PTRACE,
// CAP_SYS_RESOURCE); run unprivileged, they report what failed and why.
//
// Not thread-safe with respect to the caller's children: the probes reap
// only the pids they forked, but a concurrent waitpid(-1, ...) elsewhere in
// the process could steal one (the probe then reports that child as lost).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace roam {

struct FeatureCheck {
  std::string name;      // short, stable, no commas: "ptrace seize/interrupt"
  bool ok = false;       // the feature works on this kernel, for this user
  bool required = true;  // the engine cannot checkpoint or restore without it
  std::string detail;    // plain words: what was found, or why it failed
};

// Runs every probe once, in a fixed order, and returns one check per probe.
// Optional checks (required == false) are informational: userfaultfd
// write-protect in async mode, PAGEMAP_SCAN, soft-dirty, kernel.pid_max.
std::vector<FeatureCheck> ProbeKernelFeatures();

// One line per check, "<status> <name>: <detail>" with the status padded to
// eight columns: "ok", "MISSING" (a required check failed) or "no" (an
// optional one did), e.g.
//   "ok      ptrace seize/interrupt: stopped pid 4242\n"
//   "MISSING clone3 set_tid: EPERM (needs CAP_SYS_ADMIN ...)\n"
// (": <detail>" is left out when detail is empty), then a final line "ok"
// when every required check passed, else "missing: a, b" naming the failed
// required checks in order.
std::string RenderFeatureReport(const std::vector<FeatureCheck>& checks);

// True when every check with required == true is ok.
bool AllRequiredPresent(const std::vector<FeatureCheck>& checks);

struct CpuXsaveInfo {
  uint64_t xcr0 = 0;        // enabled state components, from xgetbv(0)
  uint32_t xsave_size = 0;  // bytes of the (standard format) XSAVE area for
                            // those components: CPUID leaf 0xD, sub-leaf 0, EBX
};

// XSAVE state of this CPU as the OS enabled it. Both fields are 0 when the
// OS has not enabled XSAVE (CPUID.1:ECX.OSXSAVE clear) or off x86-64.
CpuXsaveInfo ProbeXsave();

// `roam check`: probes, prints the report to stdout, and returns the exit
// code: 0 when every required feature is present, else 1.
int RunCheckCommand();

}  // namespace roam
