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
