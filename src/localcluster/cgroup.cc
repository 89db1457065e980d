#include "localcluster/cgroup.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <sstream>

#include "common/cgroup_fs.h"
#include "common/file_util.h"

namespace roam::localcluster {

namespace {

constexpr long kCfsPeriodUs = 100000;

bool Exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

std::string Parent(const std::string& dir) {
  size_t slash = dir.rfind('/');
  return slash == std::string::npos || slash == 0 ? "/" : dir.substr(0, slash);
}

// v2: lets the children of `dir` use cpu and memory, where `dir` has them.
void EnableChildControllers(const std::string& dir) {
  Result<std::string> available = ReadFile(dir + "/cgroup.controllers");
  if (!available.ok()) return;
  std::stringstream ss(*available);
  std::string c;
  while (ss >> c) {
    // Best effort: a quota later asked of a child without it fails clearly.
    if (c == "cpu" || c == "memory") (void)WriteFileInPlace(dir + "/cgroup.subtree_control", "+" + c + "\n");
  }
}

}  // namespace

Result<CgroupRoots> ClusterCgroupRoots(const std::string& dir_name) {
  CgroupRoots roots;
  CgroupMount cpu, memory, unified;
  std::string own;
  if (FindCgroupMount("cpu", &cpu) && ProcessCgroupDir("self", "cpu", cpu, &own)) {
    roots.cpu = own + "/" + dir_name;
    if (FindCgroupMount("memory", &memory) && ProcessCgroupDir("self", "memory", memory, &own))
      roots.memory = own + "/" + dir_name;
    return roots;
  }
  if (FindCgroupMount("", &unified)) {
    // At the top: the root cgroup may hold processes and still delegate
    // controllers; our own cgroup may not (the no-internal-process rule).
    roots.cpu = roots.memory = unified.point + "/" + dir_name;
    return roots;
  }
  return Status::Error("no usable cgroup hierarchy: neither cgroup v1 'cpu' nor cgroup v2 is mounted");
}

Status CreateClusterCgroups(const CgroupRoots& roots) {
  Status st = MakeDirs(roots.cpu, 0755);
  if (st.ok() && !roots.memory.empty() && roots.memory != roots.cpu) st = MakeDirs(roots.memory, 0755);
  if (!st.ok()) return st;
  if (Exists(roots.cpu + "/cgroup.controllers")) {  // v2
    EnableChildControllers(Parent(roots.cpu));
    EnableChildControllers(roots.cpu);
  }
  return Status::Ok();
}

std::vector<std::string> ProcessCgroupDirs(int pid) {
  std::vector<std::string> dirs;
  for (const char* controller : {"cpu", "memory", ""}) {
    CgroupMount mount;
    std::string dir;
    if (FindCgroupMount(controller, &mount) && ProcessCgroupDir(std::to_string(pid), controller, mount, &dir)) {
      bool seen = false;
      for (const std::string& d : dirs) seen = seen || d == dir;
      if (!seen) dirs.push_back(dir);
    }
  }
  return dirs;
}

Status CreateCgroup(const std::string& dir) { return MakeDirs(dir, 0755); }

Status SetCpuQuota(const std::string& dir, double cores) {
  long quota = cores > 0 ? std::max(1000L, std::lround(cores * kCfsPeriodUs)) : -1;
  if (Exists(dir + "/cpu.max"))  // v2
    return WriteFileInPlace(dir + "/cpu.max",
                            (quota > 0 ? std::to_string(quota) : "max") + " " + std::to_string(kCfsPeriodUs) + "\n");
  if (Exists(dir + "/cpu.cfs_quota_us")) {  // v1
    Status st = WriteFileInPlace(dir + "/cpu.cfs_period_us", std::to_string(kCfsPeriodUs) + "\n");
    if (!st.ok()) return st;
    return WriteFileInPlace(dir + "/cpu.cfs_quota_us", std::to_string(quota) + "\n");
  }
  if (cores == 0) return Status::Ok();
  return Status::Error("a CPU quota needs the cpu controller, which " + dir + " lacks");
}

Status SetMemoryLimit(const std::string& dir, uint64_t bytes) {
  if (Exists(dir + "/memory.max"))  // v2
    return WriteFileInPlace(dir + "/memory.max", bytes > 0 ? std::to_string(bytes) + "\n" : "max\n");
  if (Exists(dir + "/memory.limit_in_bytes"))  // v1
    return WriteFileInPlace(dir + "/memory.limit_in_bytes", bytes > 0 ? std::to_string(bytes) + "\n" : "-1\n");
  if (bytes == 0) return Status::Ok();
  return Status::Error("a memory limit needs the memory controller, which " + dir + " lacks");
}

std::vector<int> CgroupProcs(const std::string& dir) {
  std::vector<int> pids;
  Result<std::string> text = ReadFile(dir + "/cgroup.procs");
  if (!text.ok()) return pids;
  std::stringstream ss(*text);
  int pid;
  while (ss >> pid) pids.push_back(pid);
  return pids;
}

std::vector<std::string> ChildCgroups(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    struct stat sb;
    if (::stat((dir + "/" + n).c_str(), &sb) == 0 && S_ISDIR(sb.st_mode)) out.push_back(n);
  }
  ::closedir(d);
  return out;
}

Status RemoveCgroup(const std::string& dir, int timeout_ms) {
  for (int waited = 0;; waited += 20) {
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return Status::Ok();
    if (errno != EBUSY || waited >= timeout_ms) return Status::Errno("rmdir " + dir);
    ::usleep(20 * 1000);
  }
}

}  // namespace roam::localcluster
