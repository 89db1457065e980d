// How `roam nodes` and `roam mon` present the membership: the rows of the
// table (the showmap/mosmon view), its JSON form, and formatting helpers.
// Pure functions of a NodesReply, unit-tested.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "control.pb.h"

namespace roam {

// Column headers and one row of cells per node, in name order (n2 < n10).
std::vector<std::string> NodeTableHeader();
std::vector<std::vector<std::string>> NodeTableRows(const pb::NodesReply& reply, bool include_dead = true);

// `roam nodes --json`: {"self","cluster","nodes":[{"name","address","state",...}],"counters":{...}}.
nlohmann::json NodesJson(const pb::NodesReply& reply);

// A cell as a terminal may show it, the way procps' ps shows a command:
// every control character (C0, DEL, C1) and every byte that is not part of
// valid UTF-8 becomes '?', so that a command whose argv holds a newline, a
// tab or an ESC sequence stays on its row and cannot drive the terminal.
// Valid multi-byte UTF-8 (names in any script) is kept. Idempotent.
std::string PrintableCell(const std::string& s);
// The columns a cell from PrintableCell takes: its code points.
size_t CellWidth(const std::string& s);

// Aligned columns (a terminal) or single-space separated (a pipe), header
// first; every cell goes through PrintableCell, so each row is one line.
std::string RenderTable(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
                        bool aligned);

std::string HumanBytes(uint64_t bytes);   // "1.5G", "512M", "0"
std::string HumanAge(uint64_t ms);        // "0.4s", "12s", "3m", "2h"
// Sorts by name with numbers compared as numbers.
bool NaturalLess(const std::string& a, const std::string& b);

}  // namespace roam
