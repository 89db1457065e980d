// `roam check`, `roam checkpoint`, `roam restore`, `roam image show`: the
// checkpoint/restore engine on its own, without roamd.
#pragma once

#include <CLI/CLI.hpp>

#include "cli/command_filter.h"

namespace roam {

// Adds the four commands to `app`, those `want` asks for; each sets *code
// to its exit status.
void AddCheckpointCommands(CLI::App& app, int* code, CommandFilter& want);

}  // namespace roam
