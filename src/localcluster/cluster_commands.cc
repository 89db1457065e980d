// The `roam cluster` command tree: option parsing and printing only; the work
// is in cluster_lifecycle, node_view, node_exec and node_init.
#include "localcluster/cluster_commands.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "localcluster/cluster_layout.h"
#include "localcluster/cluster_lifecycle.h"
#include "localcluster/cluster_state.h"
#include "localcluster/node_exec.h"
#include "localcluster/node_init.h"
#include "localcluster/node_view.h"

namespace roam::localcluster {

namespace {

struct ClusterOptions {
  std::string name = kDefaultClusterName;
  // up
  int nodes = 0;
  std::string cpu_quotas;
  std::string mem_limits;
  std::string shared = kDefaultSharedDir;
  // status
  bool json = false;
  // exec
  std::string node;
  std::vector<std::string> command;
  // node-init
  NodeInitConfig init;
};

int Fail(const char* command, const std::string& message) {
  std::fprintf(stderr, "roam cluster %s: %s\n", command, message.c_str());
  return 1;
}

std::string SelfExe() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "/proc/self/exe";
}

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// ROAM_ROAMD if set, else `roamd` beside the running roam binary.
std::string RoamdPath() {
  const char* env = std::getenv("ROAM_ROAMD");
  if (env != nullptr && *env != '\0') return env;
  return DirName(SelfExe()) + "/roamd";
}

// The state of a cluster that must exist, or an error naming it.
Result<ClusterState> ExistingCluster(const std::string& name) {
  Status st = ValidateClusterName(name);
  if (!st.ok()) return st;
  ClusterLayout layout(name);
  Result<std::optional<ClusterState>> state = LoadClusterState(layout.StatePath());
  if (!state.ok()) return state.status();
  if (!state->has_value())
    return Status::Error("cluster " + name + " does not exist (no " + layout.StatePath() + "); start it with `roam cluster up`");
  return std::move(*state).value();
}

int RunUp(const ClusterOptions& o) {
  UpOptions up{o.name, o.nodes, o.cpu_quotas, o.mem_limits, o.shared, SelfExe(), RoamdPath()};
  Result<std::string> summary = BringUpCluster(up);
  if (!summary.ok()) return Fail("up", summary.status().message());
  std::printf("%s\n", summary->c_str());
  return 0;
}

int RunStatus(const ClusterOptions& o) {
  Result<ClusterState> state = ExistingCluster(o.name);
  if (!state.ok()) return Fail("status", state.status().message());
  std::vector<NodeView> views = InspectCluster(*state);
  std::string text = o.json ? RenderStatusJson(*state, views) : RenderStatusTable(views, ::isatty(1) == 1);
  std::fputs(text.c_str(), stdout);
  return 0;
}

int RunExec(const ClusterOptions& o) {
  Result<ClusterState> state = ExistingCluster(o.name);
  if (!state.ok()) return Fail("exec", state.status().message());
  std::fflush(stdout);
  Result<int> status = ExecInNode(*state, o.node, o.command, DirName(RoamdPath()));
  if (!status.ok()) return Fail("exec", status.status().message());
  return *status;
}

int RunDown(const ClusterOptions& o) {
  Status st = TearDownCluster(o.name);
  if (!st.ok()) return Fail("down", st.message());
  return 0;
}

}  // namespace

void AddClusterCommands(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<ClusterOptions>();
  CLI::App* cluster = app.add_subcommand("cluster", "Run a multi-node roam cluster on this machine");
  cluster->require_subcommand(1);
  auto add_name = [o](CLI::App* cmd) {
    cmd->add_option("--name", o->name, "Cluster name (default: default)");
  };

  CLI::App* up = cluster->add_subcommand("up", "Start N nodes, each its own network, PID and mount namespace");
  add_name(up);
  up->add_option("--nodes", o->nodes, "Number of nodes (n1..nN)")->required()->check(CLI::Range(1, kMaxNodes));
  up->add_option("--cpu-quota", o->cpu_quotas, "CPU cores per node, e.g. 1,0.5,0.25 (one value: all nodes)");
  up->add_option("--mem-limit", o->mem_limits, "Memory per node, e.g. 512M,256M (one value: all nodes)");
  up->add_option("--shared", o->shared, "Directory shared by all nodes at the same path")
      ->capture_default_str();
  up->callback([o, exit_code] { *exit_code = RunUp(*o); });

  CLI::App* status = cluster->add_subcommand("status", "Show each node: address, init and roamd PIDs, state");
  add_name(status);
  status->add_flag("--json", o->json, "One JSON document");
  status->callback([o, exit_code] { *exit_code = RunStatus(*o); });

  CLI::App* exec = cluster->add_subcommand("exec", "Run a command inside a node: roam cluster exec NODE -- CMD...");
  add_name(exec);
  exec->add_option("node", o->node, "Node name, e.g. n1")->required();
  exec->add_option("command", o->command, "Command and its arguments; put -- before it if they hold options")->required();
  exec->callback([o, exit_code] { *exit_code = RunExec(*o); });

  CLI::App* down = cluster->add_subcommand("down", "Stop every node and remove what `up` created");
  add_name(down);
  down->callback([o, exit_code] { *exit_code = RunDown(*o); });

  // Hidden: PID 1 of a node, started by `up` (node_init.h).
  CLI::App* init = cluster->add_subcommand("node-init", "");
  init->group("");
  init->add_option("--name", o->init.cluster)->required();
  init->add_option("--node", o->init.node)->required();
  init->add_option("--address", o->init.address)->required();
  init->add_option("--shared", o->init.shared)->required();
  init->add_option("--roamd", o->init.roamd)->required();
  init->add_option("--key-file", o->init.key_file)->required();
  init->add_option("--index", o->init.index)->required();
  init->add_option("--nodes", o->init.nodes)->required();
  init->callback([o, exit_code] { *exit_code = RunNodeInit(o->init); });
}

}  // namespace roam::localcluster
