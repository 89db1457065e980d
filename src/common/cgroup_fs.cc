#include "common/cgroup_fs.h"

#include <sstream>

#include "common/file_util.h"

namespace roam {
namespace {

bool HasItem(const std::string& comma_list, const std::string& item) {
  std::stringstream ss(comma_list);
  std::string part;
  while (std::getline(ss, part, ','))
    if (part == item) return true;
  return false;
}

}  // namespace

bool FindCgroupMount(const std::string& controller, CgroupMount* out) {
  // /proc/self/mountinfo: "id parent maj:min root mountpoint opts ... - fstype source superopts"
  Result<std::string> mountinfo = ReadFile("/proc/self/mountinfo");
  if (!mountinfo.ok()) return false;
  std::stringstream lines(*mountinfo);
  std::string line;
  while (std::getline(lines, line)) {
    size_t sep = line.find(" - ");
    if (sep == std::string::npos) continue;
    std::stringstream tail(line.substr(sep + 3));
    std::string fstype, source, superopts;
    tail >> fstype >> source >> superopts;
    bool match = controller.empty() ? fstype == "cgroup2" : fstype == "cgroup" && HasItem(superopts, controller);
    if (!match) continue;
    std::stringstream head(line.substr(0, sep));
    std::string id, parent, dev;
    head >> id >> parent >> dev >> out->root >> out->point;
    return true;
  }
  return false;
}

bool ProcessCgroupDir(const std::string& pid, const std::string& controller, const CgroupMount& mount,
                      std::string* dir) {
  // /proc/PID/cgroup: "id:controller,list:/path"; v2 is "0::/path".
  Result<std::string> cgroups = ReadFile("/proc/" + pid + "/cgroup");
  if (!cgroups.ok()) return false;
  std::stringstream cl(*cgroups);
  std::string line;
  while (std::getline(cl, line)) {
    size_t c1 = line.find(':');
    size_t c2 = c1 == std::string::npos ? std::string::npos : line.find(':', c1 + 1);
    if (c2 == std::string::npos) continue;
    std::string controllers = line.substr(c1 + 1, c2 - c1 - 1);
    if (controller.empty() ? !controllers.empty() : !HasItem(controllers, controller)) continue;
    std::string path = line.substr(c2 + 1);
    // A bind-mounted sub-tree shows its root in mountinfo; paths are below it.
    if (mount.root != "/" && path.compare(0, mount.root.size(), mount.root) == 0) path = path.substr(mount.root.size());
    if (path == "/") path.clear();
    *dir = mount.point + path;
    return true;
  }
  return false;
}

Status MoveToCgroup(const std::string& dir, pid_t pid) {
  return WriteFileInPlace(dir + "/cgroup.procs", std::to_string(pid) + "\n");
}

}  // namespace roam
