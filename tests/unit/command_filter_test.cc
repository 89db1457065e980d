// Which subcommands `roam` defines before parsing (src/cli/command_filter.h).
#include "cli/command_filter.h"

#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "cli/ckpt_commands.h"
#include "cli/process_commands.h"

namespace roam {
namespace {

CommandFilter Of(std::vector<const char*> args) {
  args.insert(args.begin(), "roam");
  return CommandFilter(static_cast<int>(args.size()), const_cast<char* const*>(args.data()));
}

std::vector<std::string> Defined(CommandFilter want) {
  CLI::App app;
  std::string socket = "/nonexistent";
  int code = 0;
  AddProcessCommands(app, socket, &code, want);
  AddCheckpointCommands(app, &code, want);
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) names.push_back(sub->get_name());
  return names;
}

TEST(CommandFilter, NamesTheFirstWordThatIsNotRoamsOwnOption) {
  EXPECT_EQ(Of({"ps", "--all"}).asked(), "ps");
  EXPECT_EQ(Of({"--socket", "/s", "run", "--on", "n2", "--", "ps"}).asked(), "run");
  EXPECT_EQ(Of({"--socket=/s", "kill", "n1:5"}).asked(), "kill");
  EXPECT_EQ(Of({"node", "drain", "n3"}).asked(), "node");
}

TEST(CommandFilter, NoneNamedMeansEverySubcommand) {
  for (CommandFilter f : {Of({}), Of({"--help"}), Of({"--version"}), Of({"-h", "ps"}), Of({"--socket", "/s"})}) {
    EXPECT_EQ(f.asked(), "");
    EXPECT_TRUE(f("run"));
    EXPECT_TRUE(f("cluster"));
    EXPECT_FALSE(f.missed());
  }
}

TEST(CommandFilter, DefinesOnlyTheOneAskedFor) {
  EXPECT_EQ(Defined(Of({"kill", "-s", "9", "n1:5"})), std::vector<std::string>({"kill"}));
  EXPECT_EQ(Defined(Of({"unlock", "n1:5"})), std::vector<std::string>({"unlock"}));
  EXPECT_EQ(Defined(Of({"restore", "-D", "img"})), std::vector<std::string>({"restore"}));
  std::vector<std::string> all = Defined(CommandFilter());
  EXPECT_EQ(all, std::vector<std::string>(
                     {"run", "ps", "migrate", "lock", "unlock", "kill", "check", "checkpoint", "restore", "image"}));
}

TEST(CommandFilter, ANameNoDefinitionClaimsIsAMiss) {
  CommandFilter f = Of({"pss"});
  EXPECT_EQ(Defined(f), std::vector<std::string>());
  CLI::App app;
  int code = 0;
  std::string socket = "/nonexistent";
  AddProcessCommands(app, socket, &code, f);
  EXPECT_TRUE(f.missed());
  CommandFilter g = Of({"ps"});
  AddProcessCommands(app, socket, &code, g);
  EXPECT_FALSE(g.missed());
}

}  // namespace
}  // namespace roam
