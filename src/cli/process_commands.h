// `roam run`, `roam ps` and `roam kill`: the commands about roam processes.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "session.pb.h"

namespace roam {

void AddProcessCommands(CLI::App& app, const std::string& socket, int* code);

// Pure helpers, unit-tested.
std::vector<std::string> PsTableHeader();
std::vector<std::vector<std::string>> PsTableRows(const pb::PsReply& reply);
nlohmann::json PsJson(const pb::PsReply& reply);
// "INT", "SIGINT", "int" or "2" -> 2; 0 if not a signal.
int ParseSignal(const std::string& s);

}  // namespace roam
