// LoadSampler: measures this node's load vector from /proc and cgroup
// files, once per call (roamd calls it every second). Cgroup v1 (the cpu
// and memory controllers, as on these machines and under `roam cluster`)
// or v2, the unified hierarchy Debian 12 boots with (a systemd unit's
// CPUQuota= and MemoryMax=): the tightest limit of roamd's cgroup and its
// ancestors counts.
//
// Inside a PID namespace (a `roam cluster` node) the host-wide /proc/loadavg
// and /proc/stat would describe the whole machine, so the sampler then
// counts runnable tasks and CPU time of the processes it can see; in the
// initial PID namespace it uses the kernel's own figures.
//
// Demand (LoadVector.demand) is what the balancer weighs: the CPUs that
// every task wanted over the period, roam's or not (the owner's own
// programs load a node as much as guests do). In a namespace it is exact:
// the time each task ran or waited for a CPU (schedstat), which a quota
// cannot hide. In the initial namespace it is the number of runnable tasks
// averaged over ~3 s. Memory and CPU
// share are capped by the cgroup limits of the daemon's own cgroup.
//
// The parsers are free functions so tests can feed them captured text.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "gossip.pb.h"

namespace roam {

struct MemInfo {
  uint64_t total = 0;
  uint64_t available = 0;
};
MemInfo ParseMemInfo(const std::string& meminfo);
// A cgroup v1 memory.stat's "total_inactive_file" (`unified`, v2:
// "inactive_file", hierarchical there): page cache the kernel reclaims
// first, so not memory in use (0 if absent).
uint64_t ParseInactiveFile(const std::string& memory_stat, bool unified = false);
// A cgroup v2 cpu.max ("QUOTA PERIOD" or "max PERIOD"): CPUs allowed, 0 if
// unlimited or unreadable.
double ParseCpuMax(const std::string& cpu_max);
// "some avg10" of a /proc/pressure file, in percent; 0 if absent.
double ParsePressureSomeAvg10(const std::string& pressure);
// The path of `controller` in a /proc/PID/cgroup text ("" if absent). An
// empty `controller`: the unified (v2) hierarchy's path, line "0::PATH".
std::string CgroupPathFor(const std::string& proc_cgroup, const std::string& controller);
// /proc/stat first line: busy and total jiffies.
bool ParseCpuLine(const std::string& proc_stat, uint64_t* busy, uint64_t* total);
// /proc/stat's procs_running: tasks runnable now (0 if absent).
double ParseProcsRunning(const std::string& proc_stat);

class LoadSampler {
 public:
  explicit LoadSampler(std::string proc = "/proc", std::string cgroup = "/sys/fs/cgroup");

  // Runs a short calibrated integer loop (~50 ms of CPU time) and returns
  // the per-core speed in roam speed units (loop iterations per microsecond).
  static uint32_t CalibrateSpeed();

  // One sample. `elapsed_ms` is the time since the previous call.
  pb::LoadVector Sample(int64_t elapsed_ms);

  void set_speed(uint32_t s) { speed_ = s; }
  void set_accepts_guests(bool b) { accepts_guests_ = b; }
  uint32_t speed() const { return speed_; }
  bool accepts_guests() const { return accepts_guests_; }

 private:
  void SampleNamespace(int64_t elapsed_ms, double* runnable, double* busy_cpus, double* demand);
  double CpuShare(uint32_t cpus) const;

  std::string proc_, cgroup_;
  // Memory limit and usage of our cgroup (0, 0 if it has no limit).
  void CgroupMemory(uint64_t* limit, uint64_t* usage) const;
  // Our cgroup and its ancestors in the unified hierarchy, ours first.
  std::vector<std::string> UnifiedDirs() const;

  std::string cpu_cg_, mem_cg_;  // our cgroup v1 paths
  std::string unified_cg_;       // our cgroup v2 path, when v1 has neither
  bool host_ns_ = true;
  uint32_t speed_ = 0;
  bool accepts_guests_ = true;
  double load_ = 0;
  uint64_t last_busy_ = 0, last_total_ = 0;
  struct Marks {
    uint64_t ticks = 0;     // utime + stime
    uint64_t sched_ns = 0;  // ran or waited for a CPU
  };
  std::map<int, Marks> last_marks_;  // by PID
  double host_demand_ = 0;
};

}  // namespace roam
