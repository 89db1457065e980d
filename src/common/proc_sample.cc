#include "common/proc_sample.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdlib>

#include "common/file_util.h"
#include "common/proc_stat.h"

namespace roam {

Result<ProcSample> SampleProc(pid_t pid, const std::string& proc) {
  const std::string dir = proc + "/" + std::to_string(pid);
  Result<std::string> stat_text = ReadFile(dir + "/stat");
  if (!stat_text.ok()) return stat_text.status();
  Result<ProcStat> st = ParseProcStat(*stat_text);
  if (!st.ok()) return st.status();
  ProcSample s;
  s.cpu_ticks = st->cpu_ticks;
  s.state = st->state;
  s.threads = st->num_threads;
  Result<std::string> statm = ReadFile(dir + "/statm");
  if (statm.ok()) {
    char* end = nullptr;
    std::strtoull(statm->c_str(), &end, 10);  // size; resident is next
    uint64_t resident = std::strtoull(end, nullptr, 10);
    s.rss_bytes = resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  }
  if (s.threads <= 1) {
    Result<std::string> ss = ReadFile(dir + "/schedstat");
    if (ss.ok()) s.sched_ns = ParseSchedstat(*ss);
  } else if (DIR* d = ::opendir((dir + "/task").c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.') continue;
      Result<std::string> ss = ReadFile(dir + "/task/" + e->d_name + "/schedstat");
      if (ss.ok()) s.sched_ns += ParseSchedstat(*ss);
    }
    ::closedir(d);
  }
  return s;
}

uint64_t ParseSchedstat(const std::string& text) {
  char* end = nullptr;
  const uint64_t run = std::strtoull(text.c_str(), &end, 10);
  if (end == text.c_str()) return 0;
  char* end2 = nullptr;
  const uint64_t wait = std::strtoull(end, &end2, 10);
  if (end2 == end) return 0;
  return run + wait;
}

double CpuDemand(uint64_t before, uint64_t after, int64_t elapsed_ms) {
  if (elapsed_ms <= 0 || after < before || before == 0) return 0;
  return static_cast<double>(after - before) / 1e6 / static_cast<double>(elapsed_ms);
}

std::string ProcStateName(char state) {
  switch (state) {
    case 'R': return "running";
    case 'S': return "sleeping";
    case 'D': return "disk-wait";
    case 'T': return "stopped";
    case 't': return "traced";
    case 'Z': return "zombie";
    default: return "unknown";
  }
}

double TicksToSeconds(uint64_t ticks) {
  static const long hz = sysconf(_SC_CLK_TCK);
  return static_cast<double>(ticks) / static_cast<double>(hz > 0 ? hz : 100);
}

double CpuPercent(uint64_t before, uint64_t after, int64_t elapsed_ms) {
  if (elapsed_ms <= 0 || after < before) return 0;
  return 100.0 * TicksToSeconds(after - before) * 1000.0 / static_cast<double>(elapsed_ms);
}

}  // namespace roam
