#include "node/load_sampler.h"

#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "common/file_util.h"
#include "common/proc_sample.h"
#include "common/proc_stat.h"

namespace roam {

namespace {

// The inode of the initial PID namespace (PROC_PID_INIT_INO in the kernel).
constexpr const char* kInitPidNs = "pid:[4026531836]";

uint64_t ReadU64(const std::string& path, uint64_t fallback) {
  Result<std::string> s = ReadFile(path);
  if (!s.ok()) return fallback;
  char* end = nullptr;
  long long v = std::strtoll(s->c_str(), &end, 10);
  return end == s->c_str() || v < 0 ? fallback : static_cast<uint64_t>(v);
}

int64_t ThreadCpuNs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

}  // namespace

MemInfo ParseMemInfo(const std::string& text) {
  MemInfo m;
  std::istringstream in(text);
  std::string key;
  uint64_t kb = 0;
  std::string unit;
  while (in >> key >> kb) {
    std::getline(in, unit);
    if (key == "MemTotal:") m.total = kb * 1024;
    if (key == "MemAvailable:") m.available = kb * 1024;
  }
  return m;
}

uint64_t ParseInactiveFile(const std::string& text, bool unified) {
  const char* want = unified ? "inactive_file" : "total_inactive_file";
  std::istringstream in(text);
  std::string key;
  uint64_t v = 0;
  while (in >> key >> v) {
    if (key == want) return v;
  }
  return 0;
}

double ParseCpuMax(const std::string& text) {
  std::istringstream in(text);
  std::string quota;
  uint64_t period = 0;
  if (!(in >> quota >> period) || quota == "max" || period == 0) return 0;
  char* end = nullptr;
  double q = std::strtod(quota.c_str(), &end);
  if (end == quota.c_str() || !(q > 0)) return 0;
  return q / static_cast<double>(period);
}

double ParsePressureSomeAvg10(const std::string& text) {
  size_t p = text.find("some avg10=");
  if (p == std::string::npos) return 0;
  double v = std::strtod(text.c_str() + p + 11, nullptr);
  return std::isfinite(v) ? std::clamp(v, 0.0, 100.0) : 0;
}

std::string CgroupPathFor(const std::string& text, const std::string& controller) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    size_t a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    std::string ctrls = line.substr(a + 1, b - a - 1);
    if (controller.empty()) {
      if (line.compare(0, a, "0") == 0 && ctrls.empty()) return line.substr(b + 1);
      continue;
    }
    std::istringstream list(ctrls);
    std::string c;
    while (std::getline(list, c, ',')) {
      if (c == controller) return line.substr(b + 1);
    }
  }
  return "";
}

double ParseProcsRunning(const std::string& text) {
  size_t p = text.find("\nprocs_running ");
  return p == std::string::npos ? 0 : std::strtod(text.c_str() + p + 15, nullptr);
}

bool ParseCpuLine(const std::string& text, uint64_t* busy, uint64_t* total) {
  std::istringstream in(text);
  std::string cpu;
  if (!(in >> cpu) || cpu != "cpu") return false;
  uint64_t v[8] = {};
  for (auto& x : v) {
    if (!(in >> x)) return false;
  }
  // user nice system idle iowait irq softirq steal
  *total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
  *busy = *total - v[3] - v[4];
  return true;
}

LoadSampler::LoadSampler(std::string proc, std::string cgroup)
    : proc_(std::move(proc)), cgroup_(std::move(cgroup)) {
  Result<std::string> cg = ReadFile(proc_ + "/self/cgroup");
  if (cg.ok()) {
    cpu_cg_ = CgroupPathFor(*cg, "cpu");
    mem_cg_ = CgroupPathFor(*cg, "memory");
    if (cpu_cg_.empty() && mem_cg_.empty()) unified_cg_ = CgroupPathFor(*cg, "");
  }
  char link[64] = {};
  ssize_t n = ::readlink((proc_ + "/self/ns/pid").c_str(), link, sizeof link - 1);
  host_ns_ = n <= 0 || std::string(link, static_cast<size_t>(n)) == kInitPidNs;
}

uint32_t LoadSampler::CalibrateSpeed() {
  // A dependent chain of integer operations: no memory traffic, no vector
  // units, the same work on every x86-64 core.
  volatile uint64_t sink = 0;
  uint64_t x = 88172645463325252ULL, iterations = 0;
  const int64_t start = ThreadCpuNs();
  int64_t spent = 0;
  while (spent < 50000000) {
    for (int i = 0; i < 10000; ++i) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
    }
    iterations += 10000;
    spent = ThreadCpuNs() - start;
  }
  sink = x;
  (void)sink;
  return static_cast<uint32_t>(std::max<uint64_t>(1, iterations * 1000 / static_cast<uint64_t>(spent)));
}

std::vector<std::string> LoadSampler::UnifiedDirs() const {
  std::vector<std::string> dirs;
  if (unified_cg_.empty()) return dirs;
  std::string path = unified_cg_;
  while (!path.empty() && path != "/") {
    dirs.push_back(cgroup_ + path);
    path.erase(path.rfind('/'));
  }
  return dirs;
}

double LoadSampler::CpuShare(uint32_t cpus) const {
  if (!unified_cg_.empty()) {
    double share = cpus;
    for (const std::string& dir : UnifiedDirs()) {
      Result<std::string> max = ReadFile(dir + "/cpu.max");
      const double allowed = max.ok() ? ParseCpuMax(*max) : 0;
      if (allowed > 0) share = std::min(share, allowed);
    }
    return share;
  }
  if (cpu_cg_.empty()) return cpus;
  std::string dir = cgroup_ + "/cpu" + cpu_cg_;
  int64_t quota = static_cast<int64_t>(ReadU64(dir + "/cpu.cfs_quota_us", 0));
  // A quota of -1 reads as "no number" here: ReadU64 refuses negatives.
  uint64_t period = ReadU64(dir + "/cpu.cfs_period_us", 100000);
  if (quota <= 0 || period == 0) return cpus;
  return std::min<double>(cpus, static_cast<double>(quota) / static_cast<double>(period));
}

void LoadSampler::SampleNamespace(int64_t elapsed_ms, double* runnable, double* busy_cpus, double* demand) {
  static const long kTicks = sysconf(_SC_CLK_TCK);
  const int self = static_cast<int>(::getpid());
  std::map<int, Marks> now_marks;
  uint64_t delta = 0, wanted_ns = 0;
  int running = 0;
  DIR* d = ::opendir(proc_.c_str());
  if (!d) return;
  while (dirent* e = ::readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    Result<ProcSample> ps = SampleProc(static_cast<pid_t>(pid), proc_);
    if (!ps.ok()) continue;
    if (ps->state == 'R') ++running;
    now_marks[static_cast<int>(pid)] = {ps->cpu_ticks, ps->sched_ns};
    auto it = last_marks_.find(static_cast<int>(pid));
    if (it == last_marks_.end()) continue;
    delta += ps->cpu_ticks >= it->second.ticks ? ps->cpu_ticks - it->second.ticks : 0;
    if (pid != self && ps->sched_ns >= it->second.sched_ns) wanted_ns += ps->sched_ns - it->second.sched_ns;
  }
  ::closedir(d);
  last_marks_ = std::move(now_marks);
  *runnable = std::max(0, running - 1);  // not counting the sampler itself
  if (elapsed_ms > 0) {
    *busy_cpus = static_cast<double>(delta) * 1000.0 / static_cast<double>(kTicks) / static_cast<double>(elapsed_ms);
    *demand = static_cast<double>(wanted_ns) / 1e6 / static_cast<double>(elapsed_ms);
  }
}

void LoadSampler::CgroupMemory(uint64_t* limit, uint64_t* usage) const {
  *limit = *usage = 0;
  std::string dir;
  if (!unified_cg_.empty()) {
    // memory.max reads "max" where there is no limit (ReadU64 gives 0).
    for (const std::string& d : UnifiedDirs()) {
      const uint64_t max = ReadU64(d + "/memory.max", 0);
      if (max > 0 && (*limit == 0 || max < *limit)) *limit = max;
    }
    dir = cgroup_ + unified_cg_;
    *usage = ReadU64(dir + "/memory.current", 0);
  } else if (!mem_cg_.empty()) {
    dir = cgroup_ + "/memory" + mem_cg_;
    *limit = ReadU64(dir + "/memory.limit_in_bytes", 0);
    *usage = ReadU64(dir + "/memory.usage_in_bytes", 0);
  } else {
    return;
  }
  // The usage counts page cache; what reclaim frees first is not in use
  // (as MemAvailable does not count it as used on the host).
  Result<std::string> stat = ReadFile(dir + "/memory.stat");
  *usage -= std::min(*usage, stat.ok() ? ParseInactiveFile(*stat, !unified_cg_.empty()) : 0);
}

pb::LoadVector LoadSampler::Sample(int64_t elapsed_ms) {
  pb::LoadVector v;
  uint32_t cpus = static_cast<uint32_t>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
  double share = CpuShare(cpus);
  v.set_cpus(cpus);
  v.set_cpu_share(share);
  v.set_speed(speed_);

  double runnable = 0, busy_cpus = 0, demand = 0;
  if (host_ns_) {
    Result<std::string> stat = ReadFile(proc_ + "/stat");
    uint64_t busy = 0, total = 0;
    if (stat.ok() && ParseCpuLine(*stat, &busy, &total) && total > last_total_ && last_total_ != 0) {
      busy_cpus = static_cast<double>(busy - last_busy_) / static_cast<double>(total - last_total_) * cpus;
    }
    last_busy_ = busy;
    last_total_ = total;
    Result<std::string> la = ReadFile(proc_ + "/loadavg");
    load_ = la.ok() ? std::strtod(la->c_str(), nullptr) : 0;
    // Tasks runnable now, not counting the sampler, averaged over a few
    // seconds: walking every process of a workstation each second would
    // cost more than the balancer is allowed.
    double decay = std::exp(-static_cast<double>(std::max<int64_t>(elapsed_ms, 1)) / 3000.0);
    double now_running = stat.ok() ? std::max(0.0, ParseProcsRunning(*stat) - 1.0) : 0;
    host_demand_ = host_demand_ * decay + now_running * (1 - decay);
    demand = host_demand_;
  } else {
    SampleNamespace(elapsed_ms, &runnable, &busy_cpus, &demand);
    // Like the kernel's one-minute load average: decays with a 60 s time constant.
    double decay = std::exp(-static_cast<double>(std::max<int64_t>(elapsed_ms, 1)) / 60000.0);
    load_ = load_ * decay + runnable * (1 - decay);
  }
  v.set_load(std::isfinite(load_) ? std::max(0.0, load_) : 0);
  v.set_cpu_util(std::clamp(share > 0 ? busy_cpus / share : 0.0, 0.0, 1.0));
  v.set_demand(std::isfinite(demand) ? std::clamp(demand, 0.0, 1e6) : 0);

  Result<std::string> mi = ReadFile(proc_ + "/meminfo");
  MemInfo mem = mi.ok() ? ParseMemInfo(*mi) : MemInfo{};
  uint64_t limit = 0, usage = 0;
  CgroupMemory(&limit, &usage);
  if (limit > 0 && limit < mem.total) {
    mem.total = limit;
    mem.available = std::min(mem.available, limit > usage ? limit - usage : 0);
  }
  v.set_mem_total(mem.total);
  v.set_mem_free(std::min(mem.available, mem.total));
  Result<std::string> psi = ReadFile(proc_ + "/pressure/memory");
  v.set_mem_pressure(psi.ok() ? ParsePressureSomeAvg10(*psi) : 0);
  v.set_accepts_guests(accepts_guests_);
  return v;
}

}  // namespace roam
