// The pool of jobs' own addresses (node/job_address.h): parsing, membership
// and the order candidates are tried in. Pure logic; the kernel side
// (iface_address.h) is exercised by tests/integration/test_own_address.sh.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include "node/iface_address.h"
#include "node/job_address.h"
#include "node/roamd_config.h"

namespace roam {
namespace {

in_addr A(const char* text) {
  in_addr a{};
  inet_pton(AF_INET, text, &a);
  return a;
}

TEST(AddressPool, CidrLeavesOutItsNetworkAndBroadcastAddresses) {
  Result<AddressPool> p = ParseAddressPool("10.213.7.128/25");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_FALSE(InPool(*p, A("10.213.7.128")));
  EXPECT_TRUE(InPool(*p, A("10.213.7.129")));
  EXPECT_TRUE(InPool(*p, A("10.213.7.254")));
  EXPECT_FALSE(InPool(*p, A("10.213.7.255")));
  EXPECT_FALSE(InPool(*p, A("10.213.7.5")));
  // A /32 is its one address.
  p = ParseAddressPool("10.0.0.9/32");
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(InPool(*p, A("10.0.0.9")));
  EXPECT_FALSE(InPool(*p, A("10.0.0.10")));
}

TEST(AddressPool, RangeHoldsBothEnds) {
  Result<AddressPool> p = ParseAddressPool("10.213.7.200-10.213.7.253");
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(InPool(*p, A("10.213.7.200")));
  EXPECT_TRUE(InPool(*p, A("10.213.7.253")));
  EXPECT_FALSE(InPool(*p, A("10.213.7.199")));
  EXPECT_FALSE(InPool(*p, A("10.213.7.254")));
}

TEST(AddressPool, EmptyGivesNothing) {
  Result<AddressPool> p = ParseAddressPool("");
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->empty());
  EXPECT_FALSE(InPool(*p, A("10.0.0.1")));
  EXPECT_TRUE(PoolCandidates(*p, {}, 7).empty());
}

TEST(AddressPool, BadTextIsOneClearError) {
  for (const char* bad : {"10.0.0.1/33", "10.0.0.1/", "10.0.0.1/4", "10.0.0/24", "banana", "10.0.0.9-10.0.0.1",
                          "10.0.0.1-x"}) {
    Result<AddressPool> p = ParseAddressPool(bad);
    EXPECT_FALSE(p.ok()) << bad;
    if (!p.ok()) {
      EXPECT_EQ(p.status().message().find('\n'), std::string::npos);
    }
  }
}

TEST(AddressPool, CandidatesSkipTakenAndStartWhereTheSeedSays) {
  Result<AddressPool> p = ParseAddressPool("10.1.1.10-10.1.1.14");
  ASSERT_TRUE(p.ok());
  std::set<uint32_t> taken = {A("10.1.1.12").s_addr};
  std::vector<in_addr> c = PoolCandidates(*p, taken, 1);
  ASSERT_EQ(c.size(), 4u);
  EXPECT_EQ(Ipv4Text(c[0]), "10.1.1.11");  // seed 1: the second address first
  EXPECT_EQ(Ipv4Text(c[1]), "10.1.1.13");  // .12 is taken
  EXPECT_EQ(Ipv4Text(c[2]), "10.1.1.14");
  EXPECT_EQ(Ipv4Text(c[3]), "10.1.1.10");  // and round
  // Every address once, whatever the seed.
  for (uint64_t seed : {0ull, 3ull, 1000003ull}) {
    std::set<uint32_t> seen;
    for (in_addr a : PoolCandidates(*p, {}, seed)) EXPECT_TRUE(seen.insert(a.s_addr).second);
    EXPECT_EQ(seen.size(), 5u);
  }
  // All taken: none.
  for (in_addr a : PoolCandidates(*p, {}, 0)) taken.insert(a.s_addr);
  EXPECT_TRUE(PoolCandidates(*p, taken, 0).empty());
}

TEST(AddressPool, RoamdConfigRefusesABadPoolAtStart) {
  RoamdConfig cfg;
  Status st = ParseRoamdConfig("job_addresses = 10.9.9.0/40\n", &cfg);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("job_addresses"), std::string::npos) << st.message();
  ASSERT_TRUE(ParseRoamdConfig("job_addresses = 10.9.9.0/24\n", &cfg).ok());
  EXPECT_EQ(cfg.job_addresses, "10.9.9.0/24");
}

TEST(Ipv4, ParsesAndPrints) {
  Result<in_addr> a = ParseIpv4("192.168.1.77");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(Ipv4Text(*a), "192.168.1.77");
  EXPECT_FALSE(ParseIpv4("192.168.1").ok());
  EXPECT_FALSE(ParseIpv4("").ok());
}

}  // namespace
}  // namespace roam
