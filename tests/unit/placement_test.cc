// Where `roam run --best` puts a process (src/node/placement.h).
#include "node/placement.h"

#include <gtest/gtest.h>

namespace roam {
namespace {

PlacementNode Node(const std::string& name, double share, double util = 0, int ours = 0) {
  PlacementNode n;
  n.name = name;
  n.alive = true;
  n.has_load = true;
  n.load.set_cpus(2);
  n.load.set_cpu_share(share);
  n.load.set_speed(400);
  n.load.set_cpu_util(util);
  n.load.set_mem_total(1ull << 30);
  n.load.set_mem_free(1ull << 29);
  n.load.set_accepts_guests(true);
  n.ours_running = ours;
  return n;
}

TEST(Placement, IdleClusterPrefersHomeAmongEquals) {
  std::vector<PlacementNode> nodes = {Node("n2", 1), Node("n1", 1), Node("n3", 1)};
  nodes[1].is_home = true;
  EXPECT_EQ(RankNodes(nodes).front(), "n1");
}

TEST(Placement, BusyHomeSendsWorkToAnIdleNode) {
  std::vector<PlacementNode> nodes = {Node("n1", 1, 1.0), Node("n2", 1, 0.0)};
  nodes[0].is_home = true;
  EXPECT_EQ(RankNodes(nodes).front(), "n2");
}

TEST(Placement, OurOwnRecentPlacementsCountBeforeTheLoadVectorShowsThem) {
  std::vector<PlacementNode> nodes = {Node("n1", 1, 0, 2), Node("n2", 1, 0, 0)};
  nodes[0].is_home = true;
  EXPECT_EQ(RankNodes(nodes).front(), "n2");
}

TEST(Placement, BiggerShareWinsUntilItIsShared) {
  // n1 has a whole CPU, n2 half of one: the first job goes to n1, and the
  // second one finds both at half a CPU; n2 is less loaded then.
  std::vector<PlacementNode> nodes = {Node("n1", 1, 0, 0), Node("n2", 0.5, 0, 0)};
  nodes[0].is_home = true;
  EXPECT_EQ(RankNodes(nodes).front(), "n1");
  nodes[0].ours_running = 1;
  EXPECT_EQ(RankNodes(nodes).front(), "n2");
}

TEST(Placement, EightJobsOnTheDemoClusterUseEveryNode) {
  std::vector<PlacementNode> nodes = {Node("n1", 1), Node("n2", 0.5), Node("n3", 0.5), Node("n4", 0.25)};
  nodes[0].is_home = true;
  std::map<std::string, int> count;
  for (int job = 0; job < 8; ++job) {
    std::string where = RankNodes(nodes).front();
    ++count[where];
    for (auto& n : nodes) {
      if (n.name == where) ++n.ours_running;
    }
  }
  EXPECT_EQ(count.size(), 4u);
  EXPECT_GE(count["n1"], count["n4"]);
}

TEST(Placement, NodesThatCannotTakeGuestsAreLeftOut) {
  PlacementNode dead = Node("dead", 4);
  dead.alive = false;
  PlacementNode blocked = Node("blocked", 4);
  blocked.load.set_accepts_guests(false);
  PlacementNode unknown = Node("unknown", 4);
  unknown.has_load = false;
  PlacementNode full = Node("full", 4);
  full.load.set_mem_free(1 << 20);
  PlacementNode home = Node("home", 0.25, 1.0, 5);
  home.is_home = true;
  home.load.set_accepts_guests(false);  // a blocked home still runs its own
  EXPECT_EQ(RankNodes({dead, blocked, unknown, full, home}), std::vector<std::string>{"home"});
}

}  // namespace
}  // namespace roam
