// ValidateSwimMessage and its pieces: every kind of bad gossip input is
// refused whole, with a message naming what is wrong; realistic input passes.
#include "cluster/swim_validate.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

namespace roam {
namespace {

pb::MemberUpdate Update(const std::string& name, const std::string& address, pb::MemberState state,
                        uint64_t incarnation = 5) {
  pb::MemberUpdate u;
  u.set_name(name);
  u.set_address(address);
  u.set_incarnation(incarnation);
  u.set_state(state);
  return u;
}

pb::LoadVector Load(const std::string& node) {
  pb::LoadVector v;
  v.set_node(node);
  v.set_cpus(8);
  v.set_cpu_share(4.0);
  v.set_speed(1000);
  v.set_load(2.5);
  v.set_cpu_util(0.4);
  v.set_mem_total(16ull << 30);
  v.set_mem_free(6ull << 30);
  v.set_mem_pressure(0.3);
  v.set_home_procs(12);
  v.set_guest_procs(1);
  v.set_accepts_guests(true);
  v.set_stamp(1700000000000123);
  v.set_age_ms(250);
  return v;
}

// What a live node sends every protocol period: a PING with a few
// membership changes and load vectors riding along.
pb::SwimMessage RealisticPing() {
  pb::SwimMessage m;
  m.set_kind(pb::SwimMessage::PING);
  m.set_probe_id(4242);
  *m.mutable_self() = Update("node-01", "10.1.0.1:7946", pb::ALIVE, 1700000000000);
  *m.add_updates() = Update("node-02", "10.1.0.2:7946", pb::SUSPECT);
  *m.add_updates() = Update("node-03", "10.1.0.3:7946", pb::DEAD);
  *m.add_updates() = Update("node-04.rack_2", "10.1.0.4:7946", pb::LEFT);
  *m.add_updates() = Update("node-05", "10.1.0.5:7946", pb::ALIVE);
  *m.add_loads() = Load("node-01");
  *m.add_loads() = Load("node-05");
  return m;
}

// Expects `msg` refused with a message containing `what`.
void ExpectRefused(const pb::SwimMessage& msg, const std::string& what) {
  Status st = ValidateSwimMessage(msg);
  ASSERT_FALSE(st.ok()) << "accepted: " << msg.ShortDebugString();
  EXPECT_NE(st.message().find(what), std::string::npos) << "message \"" << st.message() << "\" lacks \"" << what << "\"";
}

// ---- names and addresses ---------------------------------------------------------

TEST(SwimValidate, ValidNodeNamesAreAccepted) {
  const std::string good[] = {"a", "node-1", "n.example_2", "NODE-01.dc-east", std::string(63, 'x')};
  for (const std::string& n : good) {
    EXPECT_TRUE(IsValidNodeName(n)) << n;
  }
}

TEST(SwimValidate, BadNodeNamesAreRefused) {
  const std::string bad[] = {
      "",                      // empty
      std::string(64, 'x'),    // one too long
      "a/b", "../etc",         // path separators
      "a b", " a", "a\n",      // whitespace
      "nöde", "узел",          // unicode
      std::string("a\0b", 3),  // embedded NUL
      "a:b", "a;b", "a*",
  };
  for (const std::string& n : bad) EXPECT_FALSE(IsValidNodeName(n)) << "\"" << n << "\" (" << n.size() << " bytes)";
}

TEST(SwimValidate, AddressWithAnEmbeddedNulOrEscapeCodesIsRefused) {
  EXPECT_FALSE(IsValidAddress(std::string("10.0.0.1\0\x1b[2J:7946", 17)));
  EXPECT_FALSE(IsValidAddress("10.0.0.1\x1b[31m:7946"));
  EXPECT_FALSE(IsValidAddress(" 10.0.0.1:7946"));
}

TEST(SwimValidate, IncarnationOrStampNearTheTopOfTheRangeIsRefused) {
  pb::SwimMessage m = RealisticPing();
  *m.add_updates() = Update("node-09", "10.1.0.9:7946", pb::SUSPECT, kMaxIncarnation);
  ExpectRefused(m, "incarnation out of range");
  m = RealisticPing();
  m.mutable_loads(0)->set_stamp(kMaxLoadStamp);
  ExpectRefused(m, "stamp out of range");
  m = RealisticPing();
  *m.add_updates() = Update("node-09", "10.1.0.9:7946", pb::SUSPECT, kMaxIncarnation - 1);
  EXPECT_TRUE(ValidateSwimMessage(m).ok());
}

TEST(SwimValidate, ValidAddressesAreAccepted) {
  for (const char* a : {"10.0.0.1:7946", "127.0.0.1:1", "255.255.255.255:65535", "192.168.1.20:07946"}) {
    EXPECT_TRUE(IsValidAddress(a)) << a;
  }
}

TEST(SwimValidate, BadAddressesAreRefused) {
  for (const char* a : {
           "",
           "10.0.0.1",            // no port
           "10.0.0.1:",           // empty port
           ":7946",               // no host
           "10.0.0.1:0",          // port 0
           "10.0.0.1:70000",      // port above 65535
           "10.0.0.1:65536",
           "10.0.0.1:123456",     // six digits
           "10.0.0.1:-1", "10.0.0.1:+80", "10.0.0.1:80a", "10.0.0.1: 80",
           "node-1.example.com:7946",  // a hostname, not an IP
           "localhost:7946",
           "10.0.0:7946", "10.0.0.256:7946", "10.0.0.1.5:7946",
           "[::1]:7946", "::1:7946",  // IPv6 is not spoken
       }) {
    EXPECT_FALSE(IsValidAddress(a)) << a;
  }
}

// ---- whole messages -----------------------------------------------------------------

TEST(SwimValidate, RealisticPingWithPiggybackedUpdatesAndLoadsIsAccepted) {
  Status st = ValidateSwimMessage(RealisticPing());
  EXPECT_TRUE(st.ok()) << st.message();
}

TEST(SwimValidate, EveryKnownKindWithAValidSenderIsAccepted) {
  for (int k = pb::SwimMessage::PING; k <= pb::SwimMessage::LEAVE; ++k) {
    pb::SwimMessage m = RealisticPing();
    m.set_kind(static_cast<pb::SwimMessage::Kind>(k));
    m.set_target("node-07");
    m.set_target_address("10.1.0.7:7946");
    Status st = ValidateSwimMessage(m);
    EXPECT_TRUE(st.ok()) << pb::SwimMessage::Kind_Name(m.kind()) << ": " << st.message();
  }
}

TEST(SwimValidate, MessageWithoutSenderRecordIsRefused) {
  pb::SwimMessage m = RealisticPing();
  m.clear_self();
  ExpectRefused(m, "sender");
}

TEST(SwimValidate, SenderWithBadNameOrAddressIsRefused) {
  pb::SwimMessage m = RealisticPing();
  m.mutable_self()->set_name("node 01");
  ExpectRefused(m, "sender: bad node name");
  m = RealisticPing();
  m.mutable_self()->set_address("node-01:7946");
  ExpectRefused(m, "sender: bad address");
}

TEST(SwimValidate, SenderThatIsNotAliveIsRefusedExceptWhenLeaving) {
  pb::SwimMessage m = RealisticPing();
  m.mutable_self()->set_state(pb::DEAD);
  ExpectRefused(m, "sender not alive");
  m.set_kind(pb::SwimMessage::LEAVE);
  m.mutable_self()->set_state(pb::LEFT);
  Status st = ValidateSwimMessage(m);
  EXPECT_TRUE(st.ok()) << st.message();
}

TEST(SwimValidate, UnknownKindIsRefused) {
  pb::SwimMessage m = RealisticPing();
  m.set_kind(pb::SwimMessage::KIND_UNSPECIFIED);
  ExpectRefused(m, "kind");
  m.set_kind(static_cast<pb::SwimMessage::Kind>(pb::SwimMessage::LEAVE + 1));  // from a newer peer
  ExpectRefused(m, "kind");
  m.set_kind(static_cast<pb::SwimMessage::Kind>(-1));
  ExpectRefused(m, "kind");
}

TEST(SwimValidate, SixtyFiveUpdatesAreTooManyAndSixtyFourAreFine) {
  pb::SwimMessage m = RealisticPing();
  m.clear_updates();
  for (int i = 0; i < kMaxUpdatesPerMessage; ++i) {
    *m.add_updates() = Update("n" + std::to_string(i), "10.2.0.1:7946", pb::ALIVE);
  }
  Status st = ValidateSwimMessage(m);
  EXPECT_TRUE(st.ok()) << st.message();
  *m.add_updates() = Update("n64", "10.2.0.1:7946", pb::ALIVE);
  ExpectRefused(m, "too many updates");
}

TEST(SwimValidate, SixtyFiveLoadVectorsAreTooMany) {
  pb::SwimMessage m = RealisticPing();
  m.clear_loads();
  for (int i = 0; i <= kMaxLoadsPerMessage; ++i) *m.add_loads() = Load("n" + std::to_string(i));
  ExpectRefused(m, "too many load vectors");
}

TEST(SwimValidate, SuspicionNamesAValidSuspecterOrNone) {
  pb::SwimMessage m = RealisticPing();
  m.mutable_updates(0)->set_suspected_by("node-07");
  EXPECT_TRUE(ValidateSwimMessage(m).ok());
  m.mutable_updates(0)->clear_suspected_by();  // from a node older than the dogpile timeouts
  EXPECT_TRUE(ValidateSwimMessage(m).ok());
  m.mutable_updates(0)->set_suspected_by("node 07; rm -rf");
  ExpectRefused(m, "update 0: bad suspecter name");
}

TEST(SwimValidate, UpdateWithBadFieldIsRefusedNamingItsIndex) {
  pb::SwimMessage m = RealisticPing();
  m.mutable_updates(2)->set_name("");
  ExpectRefused(m, "update 2: bad node name");
  m = RealisticPing();
  m.mutable_updates(1)->set_address("10.1.0.2");
  ExpectRefused(m, "update 1: bad address");
  m = RealisticPing();
  m.mutable_updates(3)->set_state(pb::MEMBER_STATE_UNSPECIFIED);
  ExpectRefused(m, "update 3: bad state");
  m = RealisticPing();
  m.mutable_updates(3)->set_state(static_cast<pb::MemberState>(pb::LEFT + 1));
  ExpectRefused(m, "update 3: bad state");
}

TEST(SwimValidate, NanOrInfiniteLoadIsRefused) {
  pb::SwimMessage m = RealisticPing();
  m.mutable_loads(1)->set_load(std::nan(""));
  ExpectRefused(m, "load 1: bad load");
  m.mutable_loads(1)->set_load(std::numeric_limits<double>::infinity());
  ExpectRefused(m, "load 1: bad load");
  m.mutable_loads(1)->set_load(-0.5);
  ExpectRefused(m, "load 1: bad load");
}

TEST(SwimValidate, CpuUtilisationAboveOneIsRefused) {
  pb::SwimMessage m = RealisticPing();
  m.mutable_loads(0)->set_cpu_util(2.0);
  ExpectRefused(m, "load 0: bad cpu utilisation");
  m.mutable_loads(0)->set_cpu_util(std::nan(""));
  ExpectRefused(m, "load 0: bad cpu utilisation");
  m.mutable_loads(0)->set_cpu_util(1.0);
  Status st = ValidateSwimMessage(m);
  EXPECT_TRUE(st.ok()) << st.message();
}

TEST(SwimValidate, FreeMemoryAboveTotalIsRefused) {
  pb::SwimMessage m = RealisticPing();
  m.mutable_loads(0)->set_mem_free(m.loads(0).mem_total() + 1);
  ExpectRefused(m, "load 0: free memory above total");
}

TEST(SwimValidate, OtherImpossibleLoadNumbersAreRefused) {
  pb::SwimMessage m = RealisticPing();
  m.mutable_loads(0)->set_cpus(0);
  ExpectRefused(m, "load 0: bad cpu count");
  m = RealisticPing();
  m.mutable_loads(0)->set_cpu_share(-1);
  ExpectRefused(m, "load 0: bad cpu share");
  m = RealisticPing();
  m.mutable_loads(0)->set_mem_pressure(101);
  ExpectRefused(m, "load 0: bad memory pressure");
  m = RealisticPing();
  m.mutable_loads(0)->set_node("");
  ExpectRefused(m, "load 0: bad node name");
}

TEST(SwimValidate, PingReqWithoutTargetOrTargetAddressIsRefused) {
  pb::SwimMessage m = RealisticPing();
  m.set_kind(pb::SwimMessage::PING_REQ);
  m.set_target("node-07");
  ExpectRefused(m, "ping-req: bad target address");
  m.set_target_address("node-07:7946");
  ExpectRefused(m, "ping-req: bad target address");
  m.set_target_address("10.1.0.7:7946");
  m.clear_target();
  ExpectRefused(m, "ping-req: bad target");
  m.set_target("node-07");
  Status st = ValidateSwimMessage(m);
  EXPECT_TRUE(st.ok()) << st.message();
}

TEST(SwimValidate, AckWithBadTargetOrAnyMessageWithBadOriginIsRefused) {
  pb::SwimMessage m = RealisticPing();
  m.set_kind(pb::SwimMessage::ACK);
  m.set_target("node/07");
  ExpectRefused(m, "ack: bad target");
  m.clear_target();
  Status st = ValidateSwimMessage(m);
  EXPECT_TRUE(st.ok()) << "an ACK without target is fine: " << st.message();
  m.set_origin("node 07");
  ExpectRefused(m, "bad origin");
}

}  // namespace
}  // namespace roam
