// What `roam nodes` shows and its JSON contract.
#include "cli/node_table.h"

#include <gtest/gtest.h>

namespace roam {
namespace {

pb::NodesReply Sample() {
  pb::NodesReply r;
  r.set_self("n2");
  r.set_cluster("demo");
  for (const char* name : {"n10", "n2", "n1"}) {
    pb::NodeView* v = r.add_nodes();
    v->set_name(name);
    v->set_address(std::string("10.0.0.") + (name + 1) + ":7946");
    v->set_state(std::string(name) == "n10" ? pb::DEAD : pb::ALIVE);
    v->set_is_self(std::string(name) == "n2");
    if (std::string(name) != "n10") {
      pb::LoadVector* l = v->mutable_load();
      l->set_cpus(2);
      l->set_cpu_share(std::string(name) == "n2" ? 0.5 : 2);
      l->set_speed(500);
      l->set_load(1.5);
      l->set_mem_total(1ULL << 30);
      l->set_mem_free(1ULL << 29);
      l->set_accepts_guests(true);
      l->set_age_ms(400);
    }
  }
  return r;
}

TEST(NodeTable, RowsAreInNaturalOrderWithSelfMarked) {
  auto rows = NodeTableRows(Sample());
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0][0], "n1");
  EXPECT_EQ(rows[1][0], "n2*");
  EXPECT_EQ(rows[2][0], "n10");
  EXPECT_EQ(rows[1][3], "0.50/2");
  EXPECT_EQ(rows[0][7], "512M/1.0G");
  EXPECT_EQ(rows[2][2], "dead");
  EXPECT_EQ(NodeTableRows(Sample(), /*include_dead=*/false).size(), 2u);
}

TEST(NodeTable, JsonHasTheDocumentedFields) {
  nlohmann::json j = NodesJson(Sample());
  ASSERT_TRUE(j["nodes"].is_array());
  EXPECT_EQ(j["nodes"][0]["name"], "n1");
  EXPECT_EQ(j["nodes"][0]["state"], "alive");
  EXPECT_EQ(j["nodes"][2]["state"], "dead");
  EXPECT_EQ(j["nodes"][1]["cpu_share"], 0.5);
  EXPECT_TRUE(j["counters"].contains("dropped_bad_mac"));
  EXPECT_FALSE(j["nodes"][2].contains("load"));
}

TEST(NodeTable, PipeOutputIsSingleSpaced) {
  std::string t = RenderTable({"A", "BB"}, {{"x", "y"}, {"long", "z"}}, false);
  EXPECT_EQ(t, "A BB\nx y\nlong z\n");
  std::string a = RenderTable({"A", "BB"}, {{"x", "y"}, {"long", "z"}}, true);
  EXPECT_EQ(a, "A     BB\nx     y\nlong  z\n");
}

TEST(NodeTable, HumanUnits) {
  EXPECT_EQ(HumanBytes(512), "512");
  EXPECT_EQ(HumanBytes(1536ULL << 20), "1.5G");
  EXPECT_EQ(HumanAge(400), "0.4s");
  EXPECT_EQ(HumanAge(65000), "65s");
  EXPECT_EQ(HumanAge(3 * 3600 * 1000), "3h");
  EXPECT_TRUE(NaturalLess("n2", "n10"));
  EXPECT_FALSE(NaturalLess("n10", "n2"));
}

}  // namespace
}  // namespace roam
