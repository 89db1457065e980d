#include "localcluster/cluster_lifecycle.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <set>
#include <vector>

#include "common/file_util.h"
#include "common/unique_fd.h"
#include "localcluster/cgroup.h"
#include "localcluster/cluster_layout.h"
#include "localcluster/cluster_state.h"
#include "localcluster/netns_links.h"
#include "localcluster/node_launcher.h"
#include "localcluster/node_limits.h"
#include "localcluster/node_processes.h"
#include "localcluster/node_view.h"

namespace roam::localcluster {

namespace {

constexpr int kNodeSetupTimeoutMs = 10000;
constexpr int kRoamdStartTimeoutMs = 5000;
constexpr int kKillTimeoutMs = 5000;

long NowMs() {
  struct timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

void SleepMs(int ms) { ::usleep(static_cast<useconds_t>(ms) * 1000); }

// ---- the state directory lock ---------------------------------------------

// Holds an exclusive flock on <state dir>/lock while alive.
class StateDirLock {
 public:
  static Result<StateDirLock> Acquire(const std::string& dir) {
    Status st = MakeDirs(dir, 0755);
    if (!st.ok()) return st;
    std::string path = dir + "/lock";
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!fd.ok()) return Status::Errno("open " + path);
    while (::flock(fd.get(), LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      return Status::Errno("flock " + path);
    }
    return StateDirLock(std::move(fd));
  }

 private:
  explicit StateDirLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;  // closing it releases the lock
};

// ---- files on the host ----------------------------------------------------

Status EnsureClusterKey(const std::string& path) {
  if (::access(path.c_str(), F_OK) == 0) return Status::Ok();
  int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::Errno("open /dev/urandom");
  unsigned char bytes[32];
  ssize_t n = ::read(fd, bytes, sizeof bytes);
  ::close(fd);
  if (n != static_cast<ssize_t>(sizeof bytes)) return Status::Error("read /dev/urandom: short read");
  static const char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char b : bytes) {
    hex += kHex[b >> 4];
    hex += kHex[b & 15];
  }
  Status st = WriteFileAtomic(path, hex + "\n", 0600);
  if (st.ok() && ::chmod(path.c_str(), 0600) != 0) st = Status::Errno("chmod " + path);
  return st;
}

Result<std::string> PrepareSharedDir(const std::string& requested) {
  std::string path = requested;
  if (path.empty()) return Status::Error("--shared needs a directory");
  if (path[0] != '/') {
    char cwd[4096];
    if (::getcwd(cwd, sizeof cwd) == nullptr) return Status::Errno("getcwd");
    path = std::string(cwd) + "/" + path;
  }
  bool existed = ::access(path.c_str(), F_OK) == 0;
  Status st = MakeDirs(path, 0755);
  if (!st.ok()) return st;
  if (!existed && ::chmod(path.c_str(), 01777) != 0) return Status::Errno("chmod " + path);
  char real[4096];
  if (::realpath(path.c_str(), real) == nullptr) return Status::Errno("realpath " + path);
  const std::string tmp = JobTmpdir(real);  // sticky and open to all, as /tmp
  if (!(st = MakeDirs(tmp, 0755)).ok()) return st;
  if (::chmod(tmp.c_str(), 01777) != 0) return Status::Errno("chmod " + tmp);
  return std::string(real);
}

// The first third octet from the cluster's preference on that no other
// cluster's state.json claims and no host address or route uses.
Result<int> PickSubnetOctet(const ClusterLayout& layout) {
  std::set<int> taken;
  if (DIR* d = ::opendir(kClustersRoot)) {
    while (struct dirent* e = ::readdir(d)) {
      std::string other = e->d_name;
      if (other == "." || other == ".." || other == layout.name()) continue;
      Result<std::optional<ClusterState>> s = LoadClusterState(std::string(kClustersRoot) + "/" + other + "/state.json");
      if (s.ok() && s->has_value()) taken.insert((*s)->subnet_octet);
    }
    ::closedir(d);
  }
  int first = layout.PreferredSubnetOctet();
  for (int k = 0; k < 224; ++k) {
    int octet = 16 + (first - 16 + k) % 224;
    if (taken.count(octet)) continue;
    Result<bool> used = SubnetUsedOnHost(octet);
    if (!used.ok()) return used.status();
    if (!*used) return octet;
  }
  return Status::Error("no free 10.213.X.0/24 subnet left");
}

std::string LastLine(const std::string& text) {
  std::string t = text;
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  size_t nl = t.rfind('\n');
  return nl == std::string::npos ? t : t.substr(nl + 1);
}

// ---- tear-down ------------------------------------------------------------

// The live inits of the cluster: the recorded ones and any found by name.
std::set<int> ClusterInits(const ClusterLayout& layout, const std::optional<ClusterState>& state) {
  std::set<int> pids;
  if (state) {
    for (const NodeRecord& n : state->nodes)
      if (IsLiveNodeInit(n.init_pid, layout.name(), n.name)) pids.insert(n.init_pid);
  }
  for (int pid : FindNodeInits(layout.name())) pids.insert(pid);
  return pids;
}

// Cluster cgroup directories to look in: the recorded ones, the ones this
// process would create, and the ones the live inits are in.
std::vector<std::string> ClusterCgroupDirs(const ClusterLayout& layout, const std::optional<ClusterState>& state,
                                           const std::set<int>& inits) {
  std::string suffix = "/" + layout.CgroupDirName();
  std::set<std::string> roots;
  if (state) {
    if (!state->cgroup_cpu.empty()) roots.insert(state->cgroup_cpu);
    if (!state->cgroup_memory.empty()) roots.insert(state->cgroup_memory);
  }
  Result<CgroupRoots> own = ClusterCgroupRoots(layout.CgroupDirName());
  if (own.ok()) {
    roots.insert(own->cpu);
    if (!own->memory.empty()) roots.insert(own->memory);
  }
  for (int pid : inits) {
    for (const std::string& dir : ProcessCgroupDirs(pid)) roots.insert(dir.substr(0, dir.rfind('/')));
  }
  // Only roam-C directories: everything under them gets killed and removed,
  // so a stray path (a corrupt state.json, an init moved elsewhere) must not pass.
  std::vector<std::string> out;
  for (const std::string& r : roots) {
    bool named = r.size() > suffix.size() && r.compare(r.size() - suffix.size(), suffix.size(), suffix) == 0;
    if (named && r[0] == '/' && r.find("/../") == std::string::npos) out.push_back(r);
  }
  return out;
}

// Every live process of the cluster that the host can name.
std::set<int> ClusterProcesses(const ClusterLayout& layout, const std::optional<ClusterState>& state,
                               const std::vector<std::string>& roots) {
  std::set<int> pids = ClusterInits(layout, state);
  for (const std::string& root : roots) {
    for (int pid : CgroupProcs(root)) pids.insert(pid);
    for (const std::string& child : ChildCgroups(root))
      for (int pid : CgroupProcs(root + "/" + child)) pids.insert(pid);
  }
  pids.erase(::getpid());
  std::set<int> live;
  for (int pid : pids)
    if (ProcessAlive(pid)) live.insert(pid);
  return live;
}

Status TearDownLocked(const ClusterLayout& layout, const std::optional<ClusterState>& state) {
  std::vector<std::string> roots = ClusterCgroupDirs(layout, state, ClusterInits(layout, state));

  std::set<int> left;
  for (long deadline = NowMs() + kKillTimeoutMs;;) {
    left = ClusterProcesses(layout, state, roots);
    if (left.empty() || NowMs() > deadline) break;
    for (int pid : left) ::kill(pid, SIGKILL);
    SleepMs(20);
  }
  if (!left.empty()) {
    std::string list;
    for (int pid : left) list += (list.empty() ? "" : " ") + std::to_string(pid);
    return Status::Error("processes of cluster " + layout.name() + " survived SIGKILL: " + list);
  }

  for (const std::string& root : roots) {
    for (const std::string& child : ChildCgroups(root)) {
      Status st = RemoveCgroup(root + "/" + child);
      if (!st.ok()) return st;
    }
    Status st = RemoveCgroup(root);
    if (!st.ok()) return st;
  }

  // Links by name only (never a name read from state.json, which could be eth0).
  std::set<std::string> links = {layout.BridgeName()};
  for (const std::string& l : LinksWithPrefix(layout.VethPrefix())) links.insert(l);
  for (const std::string& l : links) {
    Status st = DeleteLink(l);
    if (!st.ok()) return st;
  }
  // A veth whose namespace is being destroyed vanishes asynchronously.
  for (long deadline = NowMs() + 3000; !LinksWithPrefix(layout.VethPrefix()).empty() && NowMs() < deadline;)
    SleepMs(20);
  if (!LinksWithPrefix(layout.VethPrefix()).empty())
    return Status::Error("veth links " + layout.VethPrefix() + "* of cluster " + layout.name() + " did not go away");

  if (::unlink(layout.StatePath().c_str()) != 0 && errno != ENOENT) return Status::Errno("unlink " + layout.StatePath());
  return Status::Ok();
}

// ---- bring-up -------------------------------------------------------------

struct ClusterPlan {
  ClusterLayout layout;
  std::vector<NodeLimits> limits;
  std::string shared;
};

// Builds the bridge and every node; on failure the caller tears down.
Status BuildCluster(const UpOptions& o, const ClusterPlan& plan, ClusterState* s) {
  const ClusterLayout& layout = plan.layout;
  Status st = CreateBridge(s->bridge, s->bridge_address, kSubnetPrefixLength);
  if (!st.ok()) return st;
  st = CreateClusterCgroups(CgroupRoots{s->cgroup_cpu, s->cgroup_memory});
  if (!st.ok()) return st;

  std::vector<NodeLaunch> launches;
  for (int i = 1; i <= o.nodes; ++i) {
    NodeRecord rec;
    rec.name = NodeName(i);
    rec.address = SubnetAddress(s->subnet_octet, i);
    rec.veth = layout.HostVethName(i);
    rec.cpu_quota = plan.limits[i - 1].cpu_quota;
    rec.mem_limit = plan.limits[i - 1].mem_limit;
    auto fail = [&rec](const Status& e) { return Status::Error("node " + rec.name + ": " + e.message()); };

    std::string cpu_dir = NodeCpuCgroup(*s, rec.name);
    std::string mem_dir = NodeMemoryCgroup(*s, rec.name);  // == cpu_dir on cgroup v2
    bool own_mem_dir = !mem_dir.empty() && mem_dir != cpu_dir;
    if (!(st = CreateCgroup(cpu_dir)).ok() || !(st = SetCpuQuota(cpu_dir, rec.cpu_quota)).ok()) return fail(st);
    if (own_mem_dir && !(st = CreateCgroup(mem_dir)).ok()) return fail(st);
    if (!mem_dir.empty() && !(st = SetMemoryLimit(mem_dir, rec.mem_limit)).ok()) return fail(st);

    NodeInitConfig config{layout.name(), rec.name, rec.address, plan.shared, o.roamd, layout.KeyPath(), i, o.nodes};
    Result<NodeLaunch> launch = NodeLaunch::Launch(o.roam_exe, config);
    if (!launch.ok()) return fail(launch.status());
    rec.init_pid = launch->init_pid();
    s->nodes.push_back(rec);
    if (!(st = SaveClusterState(layout.StatePath(), *s)).ok()) return st;

    if (!(st = MoveToCgroup(cpu_dir, rec.init_pid)).ok()) return fail(st);
    if (own_mem_dir && !(st = MoveToCgroup(mem_dir, rec.init_pid)).ok()) return fail(st);
    if (!(st = CreateNodeVeth(rec.veth, rec.init_pid, s->bridge)).ok()) return fail(st);
    if (!(st = launch->Release()).ok()) return fail(st);
    launches.push_back(std::move(launch).value());
  }

  long deadline = NowMs() + kNodeSetupTimeoutMs;
  for (size_t i = 0; i < launches.size(); ++i) {
    st = launches[i].AwaitReport(static_cast<int>(std::max(1L, deadline - NowMs())));
    if (!st.ok()) return Status::Error("node " + s->nodes[i].name + ": " + st.message());
  }

  // roamd was exec'd; make sure it is still there (it may die on its config).
  for (long until = NowMs() + kRoamdStartTimeoutMs;;) {
    const NodeRecord* missing = nullptr;
    for (const NodeRecord& n : s->nodes)
      if (InspectNode(*s, n).state != NodeState::kRunning) {
        missing = &n;
        break;
      }
    if (missing == nullptr) return Status::Ok();
    std::string node_root = "/proc/" + std::to_string(missing->init_pid) + "/root";
    Result<std::string> init_log = ReadFile(node_root + kNodeInitLogPath);
    bool ended = init_log.ok() && init_log->find("roamd (pid") != std::string::npos;
    if (ended || NowMs() > until) {
      Result<std::string> log = ReadFile(node_root + kRoamdLogPath);
      std::string why = log.ok() && !LastLine(*log).empty() ? ": " + LastLine(*log) : "";
      return Status::Error("node " + missing->name + ": roamd is not running" + why);
    }
    SleepMs(20);
  }
}

}  // namespace

Result<std::string> BringUpCluster(const UpOptions& o) {
  Status st = ValidateClusterName(o.name);
  if (!st.ok()) return st;
  if (o.nodes < 1 || o.nodes > kMaxNodes)
    return Status::Error("--nodes must be between 1 and " + std::to_string(kMaxNodes));
  Result<std::vector<NodeLimits>> limits = ParseNodeLimits(o.cpu_quotas, o.mem_limits, o.nodes);
  if (!limits.ok()) return limits.status();
  if (::access(o.roamd.c_str(), X_OK) != 0)
    return Status::Errno("roamd " + o.roamd + " (build it, or set ROAM_ROAMD)");

  ClusterPlan plan{ClusterLayout(o.name), std::move(limits).value(), ""};
  const ClusterLayout& layout = plan.layout;
  Result<StateDirLock> lock = StateDirLock::Acquire(layout.StateDir());
  if (!lock.ok()) return lock.status();

  Result<std::optional<ClusterState>> old = LoadClusterState(layout.StatePath());
  std::optional<ClusterState> previous = old.ok() ? *old : std::nullopt;  // unreadable: treat as stale
  if (previous) {
    int live = 0;
    for (const NodeRecord& n : previous->nodes) live += IsLiveNodeInit(n.init_pid, o.name, n.name) ? 1 : 0;
    if (live > 0)
      return Status::Error("cluster " + o.name + " is already running (" + std::to_string(live) +
                           " live nodes); run `roam cluster down --name " + o.name + "` first");
  }
  if (!(st = TearDownLocked(layout, previous)).ok()) return Status::Error("cleaning leftovers: " + st.message());

  Result<std::string> shared = PrepareSharedDir(o.shared);
  if (!shared.ok()) return shared.status();
  plan.shared = *shared;
  if (!(st = EnsureClusterKey(layout.KeyPath())).ok()) return st;

  ClusterState s;
  s.cluster = o.name;
  Result<int> octet = PickSubnetOctet(layout);
  if (!octet.ok()) return octet.status();
  s.subnet_octet = *octet;
  s.subnet = SubnetCidr(*octet);
  s.bridge = layout.BridgeName();
  s.bridge_address = SubnetAddress(*octet, kBridgeHostOctet);
  s.shared = plan.shared;
  Result<CgroupRoots> cgroups = ClusterCgroupRoots(layout.CgroupDirName());
  if (!cgroups.ok()) return cgroups.status();
  s.cgroup_cpu = cgroups->cpu;
  s.cgroup_memory = cgroups->memory;
  bool wants_mem = false;
  for (const NodeLimits& l : plan.limits) wants_mem = wants_mem || l.mem_limit != 0;
  if (wants_mem && s.cgroup_memory.empty()) return Status::Error("--mem-limit needs the memory cgroup controller, which is not mounted");
  if (!(st = SaveClusterState(layout.StatePath(), s)).ok()) return st;

  st = BuildCluster(o, plan, &s);
  if (!st.ok()) {
    Status cleanup = TearDownLocked(layout, s);
    if (!cleanup.ok()) return Status::Error(st.message() + " (and cleaning up failed: " + cleanup.message() + ")");
    return st;
  }
  return "cluster " + o.name + ": " + std::to_string(o.nodes) + " node" + (o.nodes == 1 ? "" : "s") + " up on " +
         s.subnet + ", host at " + s.bridge_address + " on " + s.bridge;
}

Status TearDownCluster(const std::string& name) {
  Status st = ValidateClusterName(name);
  if (!st.ok()) return st;
  ClusterLayout layout(name);
  std::optional<StateDirLock> lock;
  if (::access(layout.StateDir().c_str(), F_OK) == 0) {
    Result<StateDirLock> l = StateDirLock::Acquire(layout.StateDir());
    if (!l.ok()) return l.status();
    lock.emplace(std::move(l).value());
  }
  Result<std::optional<ClusterState>> state = LoadClusterState(layout.StatePath());
  return TearDownLocked(layout, state.ok() ? *state : std::nullopt);
}

}  // namespace roam::localcluster
