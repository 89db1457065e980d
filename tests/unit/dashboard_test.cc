// The dashboard's pure parts: the token, /metrics text, the state JSON, the
// history ring and the move counters (docs/DASHBOARD.md).
#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <sstream>

#include "node/move_counters.h"
#include "node/roamd_config.h"
#include "web/dashboard_token.h"
#include "web/metrics_text.h"
#include "web/state_json.h"

namespace roam {
namespace {

ClusterKey Key(char c) { return *ClusterKey::FromHex(std::string(64, c)); }

TEST(DashboardToken, ComesFromTheKeyAndTheCluster) {
  const std::string a = DashboardToken(Key('a'), "lab");
  EXPECT_EQ(a.size(), 32u);
  EXPECT_EQ(a, DashboardToken(Key('a'), "lab"));  // every node makes the same
  EXPECT_NE(a, DashboardToken(Key('b'), "lab"));
  EXPECT_NE(a, DashboardToken(Key('a'), "other"));
  // No key: random, so a token of one start is not the next one's.
  EXPECT_NE(DashboardToken(std::nullopt, "lab"), DashboardToken(std::nullopt, "lab"));
}

TEST(DashboardToken, MatchesOnlyItself) {
  const std::string t = DashboardToken(Key('a'), "lab");
  EXPECT_TRUE(TokenMatches(t, t));
  EXPECT_FALSE(TokenMatches(t.substr(1), t));
  EXPECT_FALSE(TokenMatches("", t));
  EXPECT_FALSE(TokenMatches("", ""));  // no token is never a match
  std::string wrong = t;
  wrong.back() = wrong.back() == '0' ? '1' : '0';
  EXPECT_FALSE(TokenMatches(wrong, t));
}

TEST(DashboardToken, UrlOfTheListenAddress) {
  EXPECT_EQ(DashboardUrl("127.0.0.1:7948", "0.0.0.0"), "http://127.0.0.1:7948/");
  EXPECT_EQ(DashboardUrl("0.0.0.0:9000", "10.1.2.3"), "http://10.1.2.3:9000/");
}

TEST(RoamdConfigDashboard, OffByDefaultAndChecked) {
  RoamdConfig c;
  EXPECT_EQ(c.http, "");
  ASSERT_TRUE(ParseRoamdConfig("http = 127.0.0.1:7948\n", &c).ok());
  EXPECT_EQ(c.http, "127.0.0.1:7948");
  ASSERT_TRUE(ParseRoamdConfig("http = off\n", &c).ok());
  EXPECT_EQ(c.http, "");
  Status st = ParseRoamdConfig("http = 7948\n", &c);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("line 1: http"), std::string::npos) << st.message();
  EXPECT_FALSE(ParseRoamdConfig("http = 127.0.0.1:99999\n", &c).ok());
}

pb::NodesReply TwoNodes() {
  pb::NodesReply r;
  r.set_self("n1");
  r.set_cluster("lab");
  pb::NodeView* a = r.add_nodes();
  a->set_name("n1");
  a->set_state(pb::ALIVE);
  a->set_is_self(true);
  a->mutable_load()->set_cpus(2);
  a->mutable_load()->set_load(0.5);
  a->mutable_load()->set_mem_total(1000);
  a->mutable_load()->set_mem_free(400);
  a->mutable_load()->set_accepts_guests(true);
  pb::NodeView* b = r.add_nodes();
  b->set_name("n\"2");  // a name that needs escaping in a label
  b->set_state(pb::DEAD);
  b->mutable_load()->set_accepts_guests(false);
  b->mutable_load()->set_draining(true);
  return r;
}

TEST(MoveCounters, CumulativeHistogram) {
  MoveCounters m;
  m.Started();
  m.Started();
  m.Started();
  m.Succeeded(3);     // <= 5
  m.Succeeded(150);   // <= 200
  m.Failed();
  pb::Counters c;
  m.CopyTo(&c);
  EXPECT_EQ(c.migrations_started(), 3u);
  EXPECT_EQ(c.migrations_succeeded(), 2u);
  EXPECT_EQ(c.migrations_failed(), 1u);
  ASSERT_EQ(c.frozen_ms_bounds_size(), c.frozen_ms_counts_size());
  for (int i = 0; i < c.frozen_ms_bounds_size(); ++i) {
    const double le = c.frozen_ms_bounds(i);
    EXPECT_EQ(c.frozen_ms_counts(i), (le >= 3 ? 1u : 0u) + (le >= 150 ? 1u : 0u)) << "le " << le;
  }
  EXPECT_DOUBLE_EQ(c.frozen_ms_sum(), 153);
}

TEST(MetricsText, EveryMetricHasHelpAndTypeAndWellFormedSamples) {
  pb::NodesReply r = TwoNodes();
  MoveCounters m;
  m.Started();
  m.Succeeded(12);
  m.CopyTo(r.mutable_counters());
  (*r.mutable_counters()->mutable_member_events())["dead"] = 2;
  r.mutable_counters()->set_dropped_bad_mac(7);
  const std::string text = RenderMetrics(r);
  std::set<std::string> typed;
  const std::regex sample(R"(^(roam_[a-z_]+)(\{[^}]*\})? (-?[0-9.e+]+|NaN|\+Inf)$)");
  std::istringstream in(text);
  std::string line;
  int samples = 0;
  while (std::getline(in, line)) {
    if (line.rfind("# TYPE ", 0) == 0) {
      typed.insert(line.substr(7, line.find(' ', 7) - 7));
      continue;
    }
    if (line.rfind("# HELP ", 0) == 0) continue;
    std::smatch m2;
    ASSERT_TRUE(std::regex_match(line, m2, sample)) << line;
    std::string family = m2[1];
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      if (!typed.count(family) && family.size() > strlen(suffix) &&
          family.compare(family.size() - strlen(suffix), strlen(suffix), suffix) == 0) {
        family = family.substr(0, family.size() - strlen(suffix));
      }
    }
    EXPECT_TRUE(typed.count(family)) << "no TYPE before " << line;
    ++samples;
  }
  EXPECT_GT(samples, 40);
  EXPECT_NE(text.find("roam_member_state{node=\"n\\\"2\",state=\"dead\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("roam_node_load{node=\"n1\"} 0.5"), std::string::npos);
  EXPECT_NE(text.find("roam_node_accepts_guests{node=\"n\\\"2\"} 0"), std::string::npos);
  EXPECT_NE(text.find("roam_membership_events_total{node=\"n1\",event=\"dead\"} 2"), std::string::npos);
  EXPECT_NE(text.find("roam_gossip_dropped_total{node=\"n1\",reason=\"bad_mac\"} 7"), std::string::npos);
  EXPECT_NE(text.find("roam_migration_frozen_seconds_bucket{node=\"n1\",le=\"0.02\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("roam_migration_frozen_seconds_bucket{node=\"n1\",le=\"0.01\"} 0"), std::string::npos);
  EXPECT_NE(text.find("roam_migration_frozen_seconds_bucket{node=\"n1\",le=\"+Inf\"} 1"), std::string::npos);
}

TEST(StateJson, NodesProcessesAndFlags) {
  pb::PsReply ps;
  pb::ProcessView* p = ps.add_processes();
  p->set_gpid("n1:42");
  p->set_where("n3");
  p->set_nmig(2);
  p->set_command("bc -l");
  ps.add_unreachable("n4");
  nlohmann::ordered_json j = StateJson(TwoNodes(), ps, 1234);
  EXPECT_EQ(j["self"], "n1");
  EXPECT_EQ(j["time_ms"], 1234);
  ASSERT_EQ(j["nodes"].size(), 2u);
  EXPECT_EQ(j["nodes"][0]["state"], "alive");
  EXPECT_EQ(j["nodes"][0]["blocked"], false);
  EXPECT_EQ(j["nodes"][0]["load"]["cpus"], 2);
  EXPECT_EQ(j["nodes"][1]["state"], "dead");
  EXPECT_EQ(j["nodes"][1]["blocked"], true);
  EXPECT_EQ(j["nodes"][1]["draining"], true);
  EXPECT_EQ(j["processes"][0]["gpid"], "n1:42");
  EXPECT_EQ(j["processes"][0]["where"], "n3");
  EXPECT_EQ(j["processes"][0]["nmig"], 2);
  EXPECT_EQ(j["unreachable"][0], "n4");
  pb::NodesReply no_load;
  no_load.add_nodes()->set_name("n9");
  EXPECT_TRUE(StateJson(no_load, {}, 0)["nodes"][0]["load"].is_null());
}

TEST(HistoryRing, KeepsTheLastSamplesOfEachNode) {
  HistoryRing ring(3);
  pb::NodesReply r = TwoNodes();
  for (int i = 0; i < 5; ++i) ring.Add(r, 1000 * i);
  nlohmann::ordered_json j = ring.ToJson(1000);
  EXPECT_EQ(j["interval_ms"], 1000);
  ASSERT_EQ(j["nodes"]["n1"].size(), 3u);
  EXPECT_EQ(j["nodes"]["n1"][0]["t"], 2000);
  EXPECT_EQ(j["nodes"]["n1"][2]["t"], 4000);
  EXPECT_EQ(j["nodes"]["n1"][2]["mem_used"], 600);
  EXPECT_EQ(j["nodes"]["n1"][2]["load"], 0.5);
  // A node not heard of for the ring's whole span is forgotten.
  pb::NodesReply only_n1 = r;
  only_n1.mutable_nodes()->RemoveLast();
  ring.Add(only_n1, 9000);
  j = ring.ToJson(1000);
  EXPECT_TRUE(j["nodes"].contains("n1"));
  EXPECT_FALSE(j["nodes"].contains("n\"2"));
}

}  // namespace
}  // namespace roam
