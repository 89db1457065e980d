#include "localcluster/cgroup.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <sstream>

#include "common/file_util.h"

namespace roam::localcluster {

namespace {

constexpr long kCfsPeriodUs = 100000;

bool HasItem(const std::string& comma_list, const std::string& item) {
  std::stringstream ss(comma_list);
  std::string part;
  while (std::getline(ss, part, ','))
    if (part == item) return true;
  return false;
}

}  // namespace

Result<std::string> OwnCgroupDir(const std::string& controller) {
  // /proc/self/mountinfo: "id parent maj:min root mountpoint opts ... - fstype source superopts"
  Result<std::string> mountinfo = ReadFile("/proc/self/mountinfo");
  if (!mountinfo.ok()) return mountinfo.status();
  std::string mount_root, mount_point;
  std::stringstream lines(*mountinfo);
  std::string line;
  while (std::getline(lines, line)) {
    size_t sep = line.find(" - ");
    if (sep == std::string::npos) continue;
    std::stringstream tail(line.substr(sep + 3));
    std::string fstype, source, superopts;
    tail >> fstype >> source >> superopts;
    if (fstype != "cgroup" || !HasItem(superopts, controller)) continue;
    std::stringstream head(line.substr(0, sep));
    std::string id, parent, dev;
    head >> id >> parent >> dev >> mount_root >> mount_point;
    break;
  }
  if (mount_point.empty()) return Status::Error("cgroup v1 controller '" + controller + "' is not mounted");

  // /proc/self/cgroup: "id:controller,list:/path"
  Result<std::string> cgroups = ReadFile("/proc/self/cgroup");
  if (!cgroups.ok()) return cgroups.status();
  std::stringstream cl(*cgroups);
  while (std::getline(cl, line)) {
    size_t c1 = line.find(':');
    size_t c2 = c1 == std::string::npos ? std::string::npos : line.find(':', c1 + 1);
    if (c2 == std::string::npos) continue;
    if (!HasItem(line.substr(c1 + 1, c2 - c1 - 1), controller)) continue;
    std::string path = line.substr(c2 + 1);
    // A bind-mounted sub-tree shows its root in mountinfo; paths are below it.
    if (mount_root != "/" && path.compare(0, mount_root.size(), mount_root) == 0) path = path.substr(mount_root.size());
    if (path == "/") path.clear();
    return mount_point + path;
  }
  return Status::Error("no '" + controller + "' line in /proc/self/cgroup");
}

Status CreateCgroup(const std::string& dir) { return MakeDirs(dir, 0755); }

Status SetCpuQuota(const std::string& dir, double cores) {
  Status st = WriteFileInPlace(dir + "/cpu.cfs_period_us", std::to_string(kCfsPeriodUs) + "\n");
  if (!st.ok()) return st;
  long quota = cores > 0 ? std::max(1000L, std::lround(cores * kCfsPeriodUs)) : -1;
  return WriteFileInPlace(dir + "/cpu.cfs_quota_us", std::to_string(quota) + "\n");
}

Status SetMemoryLimit(const std::string& dir, uint64_t bytes) {
  return WriteFileInPlace(dir + "/memory.limit_in_bytes", bytes > 0 ? std::to_string(bytes) + "\n" : "-1\n");
}

Status MoveToCgroup(const std::string& dir, int pid) {
  return WriteFileInPlace(dir + "/cgroup.procs", std::to_string(pid) + "\n");
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
