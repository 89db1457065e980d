// roam: the command line. Each subcommand talks to the local roamd over its
// control socket, except `cluster` (local multi-node clusters), which works
// without a daemon. Output: a table on a terminal, plain text to a pipe,
// --json for scripts. Errors: one line on stderr, non-zero exit.
#include <unistd.h>

#include <malloc.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstring>
#include <optional>

#include "cli/ckpt_commands.h"
#include "cli/command_filter.h"
#include "cli/control_client.h"
#include "cli/cli_error.h"
#include "cli/mon.h"
#include "cli/node_table.h"
#include "cli/process_commands.h"
#include "cli/run_command.h"
#include "localcluster/cluster_commands.h"

namespace roam {
namespace {

int CmdNodes(const std::string& socket, bool json) {
  pb::ControlRequest req;
  req.mutable_nodes();
  Result<pb::ControlReply> r = CallRoamd(socket, req);
  if (!r.ok()) return Fail("nodes", r.status());
  if (json) {
    printf("%s\n", NodesJson(r->nodes()).dump(2).c_str());
  } else {
    printf("%s", RenderTable(NodeTableHeader(), NodeTableRows(r->nodes()), isatty(STDOUT_FILENO)).c_str());
  }
  return 0;
}

// `roam node VERB [NODE]`: acts on NODE's roamd (forwarded by ours).
// Moves made by expel, drain and bring are listed one a line; a process
// that could not move is named on stderr, and the exit status is 1.
int NodeVerb(const std::string& socket, pb::NodeAdminRequest::Verb verb, const std::string& node,
             const std::string& what, const std::string& policy = "") {
  pb::ControlRequest req;
  req.mutable_node_admin()->set_verb(verb);
  req.mutable_node_admin()->set_policy(policy);
  req.mutable_node_admin()->set_node(node);
  Result<pb::ControlReply> r = CallRoamd(socket, req);
  if (!r.ok()) return Fail(what, r.status());
  for (const pb::MigrationFigures& m : r->node_admin().moved()) printf("%s", MigrationLine(m).c_str());
  for (const std::string& f : r->node_admin().failures()) Fail(what, f);
  return r->node_admin().failures_size() == 0 ? 0 : 1;
}

int Simple(const std::string& socket, const pb::ControlRequest& req, const std::string& what) {
  Result<pb::ControlReply> r = CallRoamd(socket, req);
  return r.ok() ? 0 : Fail(what, r.status());
}

// Defines the subcommands `want` asks for and parses the command line with
// them. Nothing when `want` named a subcommand that none defines: parse
// again with all of them.
std::optional<int> Cli(int argc, char** argv, CommandFilter& want) {
  CLI::App app{"roam: run programs on a cluster of Linux machines as if on one"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "roam " ROAM_VERSION);
  std::string socket = DefaultControlSocket();
  app.add_option("--socket", socket, "roamd control socket (default $ROAM_SOCKET or /run/roam/roamd.sock)");
  int code = 0;

  // What the subcommands read, filled in by the parse.
  bool json = false, web_json = false;
  int count = 0;
  std::string target, on_off;
  uint32_t speed = 0;
  if (want("nodes")) {
    auto* nodes = app.add_subcommand("nodes", "the cluster's nodes, their state and load");
    nodes->add_flag("--json", json, "one JSON document");
    nodes->callback([&] { code = CmdNodes(socket, json); });
  }
  // roam web: the dashboard's address with its token (docs/DASHBOARD.md).
  if (want("web")) {
    auto web = [&] {
      pb::ControlRequest req;
      req.mutable_dashboard();
      Result<pb::ControlReply> r = CallRoamd(socket, req);
      if (!r.ok()) {
        code = Fail("web", r.status());
        return;
      }
      const std::string& url = r->dashboard_url();
      if (web_json) {
        const size_t t = url.find("?token=");
        const std::string token = t == std::string::npos ? "" : url.substr(t + 7);
        printf("{\"url\":\"%s\",\"token\":\"%s\"}\n", url.c_str(), token.c_str());
      } else {
        printf("%s\n", url.c_str());
      }
    };
    auto* web_cmd = app.add_subcommand("web", "this node's dashboard address, with its access token (root)");
    web_cmd->add_flag("--json", web_json, "{\"url\",\"token\"}");
    web_cmd->callback(web);
  }
  if (want("mon")) {
    auto* mon = app.add_subcommand("mon", "live view of the cluster's load");
    mon->add_option("-n,--count", count, "stop after this many refreshes (0: until q or Ctrl-C)");
    mon->callback([&] { code = RunMon(socket, count); });
  }
  if (want("node")) {
    auto* node = app.add_subcommand("node", "administer this node");
    node->require_subcommand(1);
    struct Verb {
      const char* name;
      pb::NodeAdminRequest::Verb verb;
      const char* help;
    };
    static const Verb kVerbs[] = {
        {"block", pb::NodeAdminRequest::BLOCK, "refuse new guest processes"},
        {"unblock", pb::NodeAdminRequest::UNBLOCK, "accept guest processes again (ends a drain)"},
        {"expel", pb::NodeAdminRequest::EXPEL, "move the node's guest processes to other nodes"},
        {"bring", pb::NodeAdminRequest::BRING, "bring the node's own processes back home"},
        {"drain", pb::NodeAdminRequest::DRAIN, "block, then move every guest away (maintenance)"},
    };
    for (const Verb& v : kVerbs) {
      auto* c = node->add_subcommand(v.name, v.help);
      c->add_option("NODE", target, "node name (default: this node)");
      c->callback([&, v] { code = NodeVerb(socket, v.verb, target, std::string("node ") + v.name); });
    }
    auto* bal = node->add_subcommand("balance", "let the balancers move processes to, from and by the node, or not");
    bal->add_option("on|off|cost|load", on_off, "on, off, or on with this policy (docs/BALANCING.md)")
        ->required()
        ->check(CLI::IsMember({"on", "off", "cost", "load"}));
    bal->add_option("NODE", target, "node name (default: this node)");
    bal->callback([&] {
      code = NodeVerb(socket, on_off == "off" ? pb::NodeAdminRequest::BALANCE_OFF : pb::NodeAdminRequest::BALANCE_ON,
                      target, "node balance", on_off == "cost" || on_off == "load" ? on_off : "");
    });
    auto* ush = node->add_subcommand("usher", "let the node move processes away when its memory runs short, or not");
    ush->add_option("on|off", on_off, "on (the default) or off (docs/BALANCING.md)")
        ->required()
        ->check(CLI::IsMember({"on", "off"}));
    ush->add_option("NODE", target, "node name (default: this node)");
    ush->callback([&] {
      code = NodeVerb(socket, on_off == "off" ? pb::NodeAdminRequest::USHER_OFF : pb::NodeAdminRequest::USHER_ON,
                      target, "node usher");
    });
    auto* sp = node->add_subcommand("speed", "set this node's speed (0: back to the calibrated value)");
    sp->add_option("N", speed, "speed in roam units")->required();
    sp->callback([&] {
      pb::ControlRequest req;
      req.mutable_set_speed()->set_speed(speed);
      code = Simple(socket, req, "node speed");
    });
  }

  AddProcessCommands(app, socket, &code, want);
  if (want("cluster")) localcluster::AddClusterCommands(app, &code);
  AddCheckpointCommands(app, &code, want);
  if (want.missed()) return std::nullopt;

  // `roam run`'s command is not for CLI11: its options are its own.
  std::vector<std::string> command;
  const int ours = SplitRunCommand(argc, argv, &command);
  SetRunCommand(std::move(command));
  try {
    app.parse(ours, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return code;
}

}  // namespace
}  // namespace roam

int main(int argc, char** argv) {
  using namespace roam;
  ReserveClosedStdio();  // before roam opens anything
  // Stream relaying allocates ~64 KiB buffers per frame: keep freed memory
  // in the heap, since fresh pages cost a fault each (15 us on our VMs).
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 128 << 20);
  CommandFilter want(argc, argv);
  std::optional<int> code = Cli(argc, argv, want);
  if (!code) {
    CommandFilter all;
    code = Cli(argc, argv, all);
  }
  return *code;
}
