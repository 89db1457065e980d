// What `roam ps` and `roam kill` print and accept (src/cli/process_commands.h).
#include "cli/process_commands.h"

#include <gtest/gtest.h>
#include <signal.h>

namespace roam {
namespace {

pb::PsReply Sample() {
  pb::PsReply r;
  pb::ProcessView* p = r.add_processes();
  p->set_gpid("n1:4242");
  p->set_pid(4242);
  p->set_user("alice");
  p->set_uid(1000);
  p->set_home("n1");
  p->set_where("n3");
  p->set_state("running");
  p->set_nmig(2);
  p->set_lock(true);
  p->set_cpu_percent(99.5);
  p->set_rss_bytes(3 << 20);
  p->set_time_seconds(3725);
  p->set_command("bc -l");
  pb::ProcessView* hidden = r.add_processes();
  hidden->set_gpid("n2:7");
  hidden->set_cantmove("threads");
  r.add_unreachable("n4");
  return r;
}

TEST(PsTable, ColumnsAreTheOpenMosixOnes) {
  EXPECT_EQ(PsTableHeader(), (std::vector<std::string>{"GPID", "USER", "HOME", "WHERE", "STATE", "NMIG", "LOCK",
                                                        "CANTMOVE", "CPU%", "RSS", "TIME", "COMMAND"}));
  auto rows = PsTableRows(Sample());
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"n1:4242", "alice", "n1", "n3", "running", "2", "yes", "-", "99.5",
                                               "3.0M", "1:02:05", "bc -l"}));
  EXPECT_EQ(rows[1][7], "threads");
  EXPECT_EQ(rows[1][11], "?");  // another user's command line is not shown
}

TEST(PsJson, StableFieldNames) {
  nlohmann::json j = PsJson(Sample());
  const auto& p = j["processes"][0];
  EXPECT_EQ(p["gpid"], "n1:4242");
  EXPECT_EQ(p["where"], "n3");
  EXPECT_EQ(p["state"], "running");
  EXPECT_EQ(p["nmig"], 2);
  EXPECT_EQ(p["lock"], true);
  EXPECT_EQ(p["rss_bytes"], 3 << 20);
  EXPECT_EQ(p["command"], "bc -l");
  EXPECT_TRUE(j["processes"][1]["command"].is_null());
  EXPECT_EQ(j["unreachable"][0], "n4");
}

TEST(ParseSignal, NamesNumbersAndJunk) {
  EXPECT_EQ(ParseSignal("INT"), SIGINT);
  EXPECT_EQ(ParseSignal("sigterm"), SIGTERM);
  EXPECT_EQ(ParseSignal("SIGKILL"), SIGKILL);
  EXPECT_EQ(ParseSignal("9"), 9);
  EXPECT_EQ(ParseSignal("0"), 0);
  EXPECT_EQ(ParseSignal("65"), 0);
  EXPECT_EQ(ParseSignal("99999999999"), 0);
  EXPECT_EQ(ParseSignal("NOPE"), 0);
  EXPECT_EQ(ParseSignal(""), 0);
}

}  // namespace
}  // namespace roam

namespace roam {
namespace {

std::pair<int, std::vector<std::string>> Split(std::vector<std::string> words) {
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  std::vector<std::string> command;
  int n = SplitRunCommand(static_cast<int>(argv.size()), argv.data(), &command);
  return {n, command};
}

TEST(SplitRunCommand, TheCommandKeepsItsOwnOptions) {
  auto [n, cmd] = Split({"roam", "run", "ls", "-l", "--on", "x"});
  EXPECT_EQ(n, 2);
  EXPECT_EQ(cmd, (std::vector<std::string>{"ls", "-l", "--on", "x"}));
}

TEST(SplitRunCommand, RunOptionsThenDoubleDash) {
  auto [n, cmd] = Split({"roam", "--socket", "/s", "run", "--on", "n2", "--lock", "-t", "--", "sh", "-c", "exit 3"});
  EXPECT_EQ(n, 8);  // up to, not including, "--"
  EXPECT_EQ(cmd, (std::vector<std::string>{"sh", "-c", "exit 3"}));
}

TEST(SplitRunCommand, OtherSubcommandsAreLeftToCli11) {
  auto [n, cmd] = Split({"roam", "ps", "--all", "run"});
  EXPECT_EQ(n, 4);
  EXPECT_TRUE(cmd.empty());
  auto [n2, cmd2] = Split({"roam", "run", "--on", "n2"});
  EXPECT_EQ(n2, 4);
  EXPECT_TRUE(cmd2.empty());
}

TEST(MigrateOutput, TheLineSaysWhereHowLongAndHowMuch) {
  pb::MigrationFigures m;
  m.set_gpid("n1:42");
  m.set_from("n2");
  m.set_to("n3");
  m.set_total_ms(59.54);
  m.set_frozen_ms(43.0);
  m.set_rounds(2);
  m.set_bytes_sent(7130316);
  m.set_precopy_bytes(6815744);
  EXPECT_EQ(MigrationLine(m),
            "n1:42 moved n2 -> n3 in 59.5 ms (frozen 43.0 ms), 2 rounds, 6.8 MiB sent (6.5 MiB while it ran)\n");
  m.set_bytes_compressed(5 << 20);
  EXPECT_EQ(MigrationLine(m), "n1:42 moved n2 -> n3 in 59.5 ms (frozen 43.0 ms), 2 rounds, 6.8 MiB sent (6.5 MiB of "
                              "memory while it ran; 5.0 MiB went compressed)\n");
  m.set_rounds(1);
  m.set_precopy_bytes(0);
  m.set_bytes_compressed(0);
  EXPECT_EQ(MigrationLine(m), "n1:42 moved n2 -> n3 in 59.5 ms (frozen 43.0 ms), 1 round, 6.8 MiB sent\n");
}

TEST(MigrateOutput, ProgressLineShowsPhaseRoundBytesAndRate) {
  pb::MoveProgress p;
  p.set_gpid("n1:42");
  p.set_from("n2");
  p.set_to("n3");
  p.set_phase("pre-copy");
  p.set_rounds(2);
  p.set_bytes_sent(96u << 20);
  p.set_rate_bps(410.0 * (1 << 20));
  p.set_elapsed_ms(312);
  EXPECT_EQ(ProgressLine(p), "n1:42 n2 -> n3: pre-copy, round 2, 96.0 MiB sent, 410 MiB/s, 0.3 s");
  p.set_rounds(0);
  p.set_rate_bps(0);
  p.set_phase("checking the target");
  EXPECT_EQ(ProgressLine(p), "n1:42 n2 -> n3: checking the target, 96.0 MiB sent, 0.3 s");
}

}  // namespace
}  // namespace roam
