// roamd's configuration file parser.
#include "node/roamd_config.h"

#include <gtest/gtest.h>

#include "common/file_util.h"

namespace roam {
namespace {

TEST(ConfigParse, ReadsEveryKeyWithCommentsAndBlanks) {
  RoamdConfig c;
  Status st = ParseRoamdConfig(
      "# a comment\n\nname = lab7   # trailing comment\ncluster=physics\nkey_file = /k\nbind = 10.0.0.7\n"
      "port = 8000\nmulticast = off\npeers = 10.0.0.1:7946, 10.0.0.2:7946\ncontrol_socket = /tmp/s\n"
      "probe_interval_ms = 1000\nping_timeout_ms = 300\nsuspicion_mult = 5\n",
      &c);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(c.name, "lab7");
  EXPECT_EQ(c.cluster, "physics");
  EXPECT_EQ(c.key_file, "/k");
  EXPECT_EQ(c.bind, "10.0.0.7");
  EXPECT_EQ(c.port, 8000);
  EXPECT_EQ(c.multicast, "off");
  ASSERT_EQ(c.peers.size(), 2u);
  EXPECT_EQ(c.peers[1], "10.0.0.2:7946");
  EXPECT_EQ(c.swim.probe_interval_ms, 1000);
  EXPECT_EQ(c.swim.ping_timeout_ms, 300);
  EXPECT_EQ(c.swim.suspicion_mult, 5);
}

TEST(ConfigParse, BalancerKeys) {
  RoamdConfig c;
  Status st = ParseRoamdConfig(
      "balance = off\nbalance_policy = load\nbalance_period_ms = 500\nbalance_sample = 3\n"
      "balance_hysteresis_percent = 35\nbalance_min_age_ms = 1000\nbalance_min_residence_ms = 60000\n"
      "balance_gain_over_cost = 4\nbalance_max_moves = 2\nbalance_cost_base = 8\nbalance_mem_weight = 2\n"
      "balance_mem_reserve_percent = 20\nusher_free_percent = 0\nusher_psi_percent = 40\nusher_horizon_ms = 0\n",
      &c);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_FALSE(c.balance);
  EXPECT_EQ(c.balancer.policy, BalancePolicy::kLoad);
  EXPECT_EQ(c.balancer.period_ms, 500);
  EXPECT_EQ(c.balancer.sample, 3);
  EXPECT_DOUBLE_EQ(c.balancer.hysteresis, 0.35);
  EXPECT_EQ(c.balancer.min_age_ms, 1000);
  EXPECT_EQ(c.balancer.min_residence_ms, 60000);
  EXPECT_DOUBLE_EQ(c.balancer.gain_over_cost, 4);
  EXPECT_EQ(c.balancer.max_moves, 2);
  EXPECT_DOUBLE_EQ(c.balancer.cost_base, 8);
  EXPECT_DOUBLE_EQ(c.balancer.mem_weight, 2);
  EXPECT_DOUBLE_EQ(c.balancer.mem_reserve, 0.2);
  EXPECT_DOUBLE_EQ(c.usher.free_share, 0);
  EXPECT_DOUBLE_EQ(c.usher.psi, 40);
  EXPECT_EQ(c.usher.horizon_ms, 0);
  EXPECT_EQ(ParseRoamdConfig("balance_policy = fastest\n", &c).message(),
            "line 1: balance_policy: expected cost or load");
  EXPECT_FALSE(ParseRoamdConfig("balance_cost_base = 1\n", &c).ok());
  EXPECT_FALSE(ParseRoamdConfig("balance_mem_reserve_percent = 95\n", &c).ok());
}

TEST(ConfigParse, JobTmpdirIsAnAbsolutePathOrNothing) {
  RoamdConfig c;
  EXPECT_TRUE(c.job_tmpdir.empty());
  ASSERT_TRUE(ParseRoamdConfig("job_tmpdir = /home/roam-tmp\n", &c).ok());
  EXPECT_EQ(c.job_tmpdir, "/home/roam-tmp");
  Status st = ParseRoamdConfig("job_tmpdir = tmp\n", &c);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("absolute"), std::string::npos) << st.message();
}

TEST(ConfigParse, ErrorsNameTheLineAndTheKey) {
  RoamdConfig c;
  Status st = ParseRoamdConfig("name = a\nprot = 7946\n", &c);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message(), "line 2: unknown key 'prot'");
  EXPECT_FALSE(ParseRoamdConfig("port = 70000\n", &c).ok());
  EXPECT_FALSE(ParseRoamdConfig("port = -1\n", &c).ok());
  EXPECT_FALSE(ParseRoamdConfig("name = has space\n", &c).ok());
  EXPECT_FALSE(ParseRoamdConfig("bind = example.org\n", &c).ok());
  EXPECT_FALSE(ParseRoamdConfig("peers = 10.0.0.1\n", &c).ok());
  EXPECT_FALSE(ParseRoamdConfig("just words\n", &c).ok());
  EXPECT_FALSE(ParseRoamdConfig("probe_interval_ms = 100\nping_timeout_ms = 200\n", &c).ok());
}

TEST(ConfigParse, TheShippedExampleParses) {
  Result<std::string> text = ReadFile(std::string(ROAM_TEST_DATA) + "/../../etc/roamd.conf.example");
  ASSERT_TRUE(text.ok()) << text.status().message();
  RoamdConfig c;
  Status st = ParseRoamdConfig(*text, &c);
  EXPECT_TRUE(st.ok()) << st.message();
}

}  // namespace
}  // namespace roam
