// `roam run`, `roam ps` and `roam kill`: the commands about roam processes.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "migrate.pb.h"
#include <string>
#include <vector>

#include "cli/command_filter.h"
#include "session.pb.h"

namespace roam {

// Defines run, ps, migrate, lock, unlock and kill: those `want` asks for.
void AddProcessCommands(CLI::App& app, const std::string& socket, int* code, CommandFilter& want);

// `roam [--socket S] run [OPTIONS] [--] CMD ARGS...`: the command starts at
// `--` or at the first word that is not one of run's options, so that its
// own options (`roam run ls -l`) are not taken for roam's. Returns the
// number of leading words of argv for CLI11 (the rest, minus a `--`, goes
// to *command); argc when argv is not a run.
int SplitRunCommand(int argc, char** argv, std::vector<std::string>* command);
void SetRunCommand(std::vector<std::string> command);

// Pure helpers, unit-tested. PsTableRows gives each cell as roamd sent it
// (a command may hold any byte); RenderTable (node_table.h) shows control
// characters as '?', as ps does, so that a row stays one line.
std::vector<std::string> PsTableHeader();
std::vector<std::vector<std::string>> PsTableRows(const pb::PsReply& reply);
nlohmann::json PsJson(const pb::PsReply& reply);
// `roam migrate --json`: {"gpid","from","to","total_ms","frozen_ms","rounds","bytes_sent","bytes_compressed",
// "dump_ms","restore_ms"}.
nlohmann::json MigrationJson(const pb::MigrationFigures& m);
// `roam migrate` on a terminal or a pipe: one line.
std::string MigrationLine(const pb::MigrationFigures& m);
// The line `roam migrate` keeps rewriting on a terminal while the move
// runs, e.g. "n1:42 n2 -> n3: pre-copy, round 2, 96.0 MiB sent, 410 MiB/s,
// 0.3 s". Pure.
std::string ProgressLine(const pb::MoveProgress& p);
// "INT", "SIGINT", "int" or "2" -> 2; 0 if not a signal.
int ParseSignal(const std::string& s);

}  // namespace roam
