#include "localcluster/node_processes.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include "common/file_util.h"

namespace roam::localcluster {

namespace {

std::string PidNamespace(int pid) {
  char buf[64];
  std::string link = "/proc/" + std::to_string(pid) + "/ns/pid";
  ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
  if (n <= 0) return "";
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace

bool ReadProcStat(int pid, ProcStat* out) {
  Result<std::string> text = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  return text.ok() && ParseProcStat(*text, out);
}

bool ProcessAlive(int pid) {
  ProcStat s;
  return pid > 0 && ReadProcStat(pid, &s) && s.state != 'Z' && s.state != 'X';
}

std::vector<std::string> ProcessArgv(int pid) {
  std::vector<std::string> argv;
  Result<std::string> text = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
  if (!text.ok()) return argv;
  size_t start = 0;
  while (start < text->size()) {
    size_t nul = text->find('\0', start);
    if (nul == std::string::npos) nul = text->size();
    argv.push_back(text->substr(start, nul - start));
    start = nul + 1;
  }
  return argv;
}

std::vector<int> AllPids() {
  std::vector<int> pids;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return pids;
  while (struct dirent* e = ::readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (end != e->d_name && *end == '\0' && pid > 0) pids.push_back(static_cast<int>(pid));
  }
  ::closedir(d);
  std::sort(pids.begin(), pids.end());
  return pids;
}

bool IsNodeInitArgv(const std::vector<std::string>& argv, const std::string& cluster, const std::string& node) {
  if (argv.size() < 3 || argv[1] != "cluster" || argv[2] != "node-init") return false;
  bool cluster_ok = false, node_ok = node.empty();
  for (size_t i = 3; i + 1 < argv.size(); ++i) {
    if (argv[i] == "--name" && argv[i + 1] == cluster) cluster_ok = true;
    if (argv[i] == "--node" && argv[i + 1] == node) node_ok = true;
  }
  return cluster_ok && node_ok;
}

std::vector<int> FindNodeInits(const std::string& cluster) {
  std::vector<int> out;
  for (int pid : AllPids())
    if (IsLiveNodeInit(pid, cluster, "")) out.push_back(pid);
  return out;
}

bool IsLiveNodeInit(int pid, const std::string& cluster, const std::string& node) {
  return ProcessAlive(pid) && IsNodeInitArgv(ProcessArgv(pid), cluster, node);
}

std::vector<int> ProcessesInPidNamespaceOf(int init_pid) {
  std::vector<int> out;
  std::string ns = PidNamespace(init_pid);
  if (ns.empty()) return out;
  for (int pid : AllPids())
    if (PidNamespace(pid) == ns && ProcessAlive(pid)) out.push_back(pid);
  return out;
}

int FindRoamd(const std::vector<int>& pids) {
  std::vector<int> sorted = pids;
  std::sort(sorted.begin(), sorted.end());
  for (int pid : sorted) {
    ProcStat s, parent;
    if (!ReadProcStat(pid, &s) || s.comm != "roamd" || s.state == 'Z' || s.state == 'X') continue;
    if (ReadProcStat(s.ppid, &parent) && parent.comm == "roamd") continue;
    return pid;
  }
  return 0;
}

}  // namespace roam::localcluster
