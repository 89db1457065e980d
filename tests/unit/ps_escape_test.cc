// Tables stay tables: what a command, a user or a node name holds cannot
// break a row of `roam ps` or `roam nodes`, nor reach the terminal as a
// control sequence (control characters become '?', as procps' ps shows them).
#include <gtest/gtest.h>

#include <algorithm>

#include "cli/node_table.h"
#include "cli/process_commands.h"

namespace roam {
namespace {

pb::PsReply OneProcess(const std::string& command, const std::string& user = "ana") {
  pb::PsReply r;
  pb::ProcessView* p = r.add_processes();
  p->set_gpid("n1:4242");
  p->set_user(user);
  p->set_home("n1");
  p->set_where("n3");
  p->set_state("R");
  p->set_command(command);
  return r;
}

size_t Lines(const std::string& s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

TEST(PsEscape, ControlCharactersBecomeQuestionMarks) {
  EXPECT_EQ(PrintableCell("a\nb"), "a?b");
  EXPECT_EQ(PrintableCell("a\tb\rc"), "a?b?c");
  EXPECT_EQ(PrintableCell("\x1b[31mred"), "?[31mred");
  EXPECT_EQ(PrintableCell(std::string("nul\0x", 5)), "nul?x");
  EXPECT_EQ(PrintableCell("del\x7f"), "del?");
}

TEST(PsEscape, C1ControlsAndBrokenUtf8BecomeQuestionMarks) {
  EXPECT_EQ(PrintableCell("\xc2\x9b" "2J"), "?2J");      // U+009B, the one-byte CSI
  EXPECT_EQ(PrintableCell("a\xff" "b"), "a?b");          // never valid in UTF-8
  EXPECT_EQ(PrintableCell("\xc3"), "?");                 // cut short
  EXPECT_EQ(PrintableCell("\xc0\xaf"), "??");            // overlong '/'
  EXPECT_EQ(PrintableCell("\xed\xa0\x80"), "???");       // a surrogate
}

TEST(PsEscape, PrintableTextAndUtf8AreKept) {
  EXPECT_EQ(PrintableCell("sh -c 'sleep 30' a b"), "sh -c 'sleep 30' a b");
  EXPECT_EQ(PrintableCell("caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x90\xa7"), "caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x90\xa7");
  EXPECT_EQ(PrintableCell(PrintableCell("x\ny")), "x?y");
}

TEST(PsEscape, ACommandWithANewlineKeepsOneRow) {
  for (bool aligned : {true, false}) {
    std::string table = RenderTable(PsTableHeader(), PsTableRows(OneProcess("sh -c sleep 30 a\nb\x1b]0;x\a")), aligned);
    EXPECT_EQ(Lines(table), 2u) << table;
    EXPECT_EQ(table.find('\x1b'), std::string::npos);
    EXPECT_EQ(table.find('\a'), std::string::npos);
    EXPECT_NE(table.find("sh -c sleep 30 a?b?]0;x?\n"), std::string::npos) << table;
  }
}

TEST(PsEscape, ColumnsStayAlignedAfterEscaping) {
  pb::PsReply r = OneProcess("x", "an\ta");
  *r.add_processes() = OneProcess("y", "caf\xc3\xa9").processes(0);
  std::string table = RenderTable(PsTableHeader(), PsTableRows(r), true);
  // The HOME column starts at the same column on every line ("café" is 4
  // columns on screen, not 5 bytes).
  size_t header_at = table.find("HOME");
  size_t first = table.find('\n') + 1, second = table.find('\n', first) + 1;
  for (size_t start : {first, second}) {
    std::string line = table.substr(start, table.find('\n', start) - start);
    size_t home = line.find("  n1  ") + 2;
    EXPECT_EQ(CellWidth(line.substr(0, home)), header_at) << table;
  }
}

TEST(PsEscape, NodeNamesInTheNodeTableAreEscaped) {
  pb::NodesReply r;
  pb::NodeView* v = r.add_nodes();
  v->set_name("evil\nname");
  v->set_address("10.0.0.1:7946");
  v->set_state(pb::ALIVE);
  std::string table = RenderTable(NodeTableHeader(), NodeTableRows(r), true);
  EXPECT_EQ(Lines(table), 2u) << table;
  EXPECT_NE(table.find("evil?name"), std::string::npos) << table;
}

}  // namespace
}  // namespace roam
