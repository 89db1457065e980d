// The pure parts of `roam cluster`: limits, layout, state file, node-init's
// roamd.conf (which must parse with roamd's own parser).
#include <gtest/gtest.h>

#include "localcluster/cluster_layout.h"
#include "localcluster/cluster_state.h"
#include "localcluster/node_init.h"
#include "localcluster/node_limits.h"
#include "localcluster/node_processes.h"
#include "node/roamd_config.h"

namespace roam::localcluster {
namespace {

TEST(ClusterLimits, QuotaAndMemoryListsGiveOneLimitPerNode) {
  auto limits = ParseNodeLimits("1,0.5,0.25", "512M,1G,0", 3);
  ASSERT_TRUE(limits.ok()) << limits.status().message();
  ASSERT_EQ(limits->size(), 3u);
  EXPECT_DOUBLE_EQ((*limits)[1].cpu_quota, 0.5);
  EXPECT_EQ((*limits)[0].mem_limit, 512ULL << 20);
  EXPECT_EQ((*limits)[1].mem_limit, 1ULL << 30);
  EXPECT_EQ((*limits)[2].mem_limit, 0u);
}

TEST(ClusterLimits, OneValueAppliesToEveryNodeAndEmptyMeansNone) {
  auto limits = ParseNodeLimits("0.5", "", 4);
  ASSERT_TRUE(limits.ok());
  for (const auto& l : *limits) {
    EXPECT_DOUBLE_EQ(l.cpu_quota, 0.5);
    EXPECT_EQ(l.mem_limit, 0u);
  }
}

TEST(ClusterLimits, BadListsAreRefused) {
  EXPECT_FALSE(ParseNodeLimits("1,0.5", "", 3).ok());  // two values for three nodes
  EXPECT_FALSE(ParseNodeLimits("-1", "", 1).ok());
  EXPECT_FALSE(ParseNodeLimits("fast", "", 1).ok());
  EXPECT_FALSE(ParseNodeLimits("", "12Q", 1).ok());
  EXPECT_FALSE(ParseCpuQuota("0.001").ok());
  EXPECT_EQ(*ParseMemSize("2g"), 2ULL << 30);
  EXPECT_EQ(*ParseMemSize("64MB"), 64ULL << 20);
  EXPECT_FALSE(ParseMemSize("64K").ok());  // below the 4M minimum
  EXPECT_EQ(FormatMemSize(512ULL << 20), "512M");
}

TEST(ClusterLayoutNames, InterfaceNamesFitIfnamsizAndAreStable) {
  ClusterLayout a("a-rather-long-cluster-name-here");
  EXPECT_LE(a.BridgeName().size(), 15u);
  EXPECT_LE(a.HostVethName(250).size(), 15u);
  EXPECT_EQ(a.BridgeName(), ClusterLayout("a-rather-long-cluster-name-here").BridgeName());
  EXPECT_NE(a.BridgeName(), ClusterLayout("other").BridgeName());
  int octet = a.PreferredSubnetOctet();
  EXPECT_GE(octet, 16);
  EXPECT_LE(octet, 239);
  EXPECT_EQ(SubnetAddress(42, 3), "10.213.42.3");
  EXPECT_EQ(NodeName(7), "n7");
}

TEST(ClusterLayoutNames, ClusterNamesThatWouldEscapeAPathAreRefused) {
  EXPECT_TRUE(ValidateClusterName("lab-1_b").ok());
  EXPECT_FALSE(ValidateClusterName("").ok());
  EXPECT_FALSE(ValidateClusterName("../etc").ok());
  EXPECT_FALSE(ValidateClusterName("a/b").ok());
  EXPECT_FALSE(ValidateClusterName(std::string(33, 'a')).ok());
}

TEST(ClusterStateFile, RoundTripsThroughJson) {
  ClusterState s;
  s.cluster = "lab";
  s.subnet_octet = 42;
  s.subnet = "10.213.42.0/24";
  s.bridge = "rbr-abcdef";
  s.bridge_address = "10.213.42.254";
  s.shared = "/var/lib/roam/shared";
  s.cgroup_cpu = "/sys/fs/cgroup/cpu/roam-lab";
  s.nodes.push_back({"n1", "10.213.42.1", 1234, "rve-abcdef-1", 0.5, 256ULL << 20});
  s.nodes.push_back({"n2", "10.213.42.2", 1240, "rve-abcdef-2", 0, 0});
  auto back = ClusterStateFromJson(ClusterStateToJson(s));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->cluster, "lab");
  ASSERT_EQ(back->nodes.size(), 2u);
  EXPECT_EQ(back->nodes[0].init_pid, 1234);
  EXPECT_DOUBLE_EQ(back->nodes[0].cpu_quota, 0.5);
  EXPECT_EQ(back->nodes[0].mem_limit, 256ULL << 20);
  ASSERT_NE(back->FindNode("n2"), nullptr);
  EXPECT_EQ(back->FindNode("n3"), nullptr);
}

TEST(ClusterStateFile, MalformedDocumentsAreRefused) {
  EXPECT_FALSE(ClusterStateFromJson("").ok());
  EXPECT_FALSE(ClusterStateFromJson("{").ok());
  EXPECT_FALSE(ClusterStateFromJson("[1,2]").ok());
  EXPECT_FALSE(ClusterStateFromJson(R"({"cluster": 5})").ok());
}

TEST(NodeInitConf, RenderedRoamdConfParsesWithRoamdsOwnParser) {
  NodeInitConfig c;
  c.cluster = "lab";
  c.node = "n3";
  c.address = "10.213.42.3";
  c.shared = "/var/lib/roam/shared";
  c.roamd = "/usr/bin/roamd";
  c.key_file = "/var/lib/roam/clusters/lab/key";
  RoamdConfig cfg;
  Status st = ParseRoamdConfig(RenderRoamdConf(c), &cfg);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(cfg.name, "n3");
  EXPECT_EQ(cfg.cluster, "lab");
  EXPECT_EQ(cfg.bind, "10.213.42.3");
  EXPECT_EQ(cfg.key_file, "/var/lib/roam/clusters/lab/key");
  EXPECT_EQ(cfg.control_socket, "/run/roam/roamd.sock");
  // Jobs' own addresses: above the nodes', below the host's bridge (.254).
  EXPECT_EQ(cfg.job_addresses, "10.213.42.128-10.213.42.253");
  c.nodes = 200;
  ASSERT_TRUE(ParseRoamdConfig(RenderRoamdConf(c), &cfg).ok());
  EXPECT_EQ(cfg.job_addresses, "10.213.42.201-10.213.42.253");
}

// Nodes number their processes in ranges of their own, as separate
// machines would not collide at once; n1 counts from 1 as a fresh system.
TEST(FirstPidOfNode, SplitsTheNamespacesPidSpaceBetweenTheNodes) {
  EXPECT_EQ(FirstPidOfNode(1, 4, 32768), 0);
  EXPECT_EQ(FirstPidOfNode(2, 4, 32768), 8192);
  EXPECT_EQ(FirstPidOfNode(4, 4, 32768), 24576);
  EXPECT_EQ(FirstPidOfNode(250, 250, 4194304), 249 * 16777);
  EXPECT_LT(FirstPidOfNode(250, 250, 4194304), 4194304);
  EXPECT_EQ(FirstPidOfNode(2, 100, 32768), 0);  // ranges of 327: not worth it
  EXPECT_EQ(FirstPidOfNode(1, 1, 32768), 0);
  EXPECT_EQ(FirstPidOfNode(5, 4, 32768), 0);  // not a node of the cluster
}

TEST(NodeInitArgv, RecognisesOnlyTheInitOfTheRightNode) {
  std::vector<std::string> argv{"/x/roam", "cluster", "node-init", "--name", "lab", "--node", "n2"};
  EXPECT_TRUE(IsNodeInitArgv(argv, "lab", "n2"));
  EXPECT_TRUE(IsNodeInitArgv(argv, "lab", ""));
  EXPECT_FALSE(IsNodeInitArgv(argv, "lab", "n3"));
  EXPECT_FALSE(IsNodeInitArgv(argv, "other", "n2"));
  EXPECT_FALSE(IsNodeInitArgv({"/bin/sleep", "100"}, "lab", ""));
}

}  // namespace
}  // namespace roam::localcluster
