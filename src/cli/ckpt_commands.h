// `roam check`, `roam checkpoint`, `roam restore`, `roam image show`: the
// checkpoint/restore engine on its own, without roamd.
#pragma once

#include <CLI/CLI.hpp>

namespace roam {

// Adds the four commands to `app`; each sets *code to its exit status.
void AddCheckpointCommands(CLI::App& app, int* code);

}  // namespace roam
