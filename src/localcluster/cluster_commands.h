// `roam cluster up|status|exec|down`: a real multi-node cluster on one
// machine, each node its own network, PID and mount namespace, joined by
// veth pairs through a bridge, with optional cgroup CPU quota and memory
// limit per node, and a shared directory at the same path on every node.
#pragma once

#include <CLI/CLI.hpp>

namespace roam::localcluster {

// Registers the `cluster` subcommand tree on `app`. Each callback stores the
// command's exit status in *exit_code (0 on success; on failure one line on
// stderr). REQUIRES: exit_code outlives app.parse().
void AddClusterCommands(CLI::App& app, int* exit_code);

}  // namespace roam::localcluster
