// Envelope, ReplayWindow and ClusterKey: what a receiver accepts from the
// network and what it refuses, and why.
#include "cluster/envelope.h"

#include <gtest/gtest.h>
#include <sodium.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "cluster/cluster_key.h"

namespace roam {
namespace {

constexpr char kHexA[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
constexpr char kHexB[] = "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

ClusterKey Key(const char* hex) {
  Result<ClusterKey> k = ClusterKey::FromHex(hex);
  EXPECT_TRUE(k.ok()) << k.status().message();
  return *k;
}

pb::SwimMessage Ping(const std::string& name, const std::string& address = "10.0.0.1:7946") {
  pb::SwimMessage m;
  m.set_kind(pb::SwimMessage::PING);
  m.set_probe_id(7);
  pb::MemberUpdate* self = m.mutable_self();
  self->set_name(name);
  self->set_address(address);
  self->set_incarnation(1700000000000);
  self->set_state(pb::ALIVE);
  pb::MemberUpdate* u = m.add_updates();
  u->set_name("node-c");
  u->set_address("10.0.0.3:7946");
  u->set_incarnation(3);
  u->set_state(pb::SUSPECT);
  return m;
}

// The result of Open, as text for failure messages ("accepted" or the reason).
std::string Outcome(const std::optional<DropReason>& r) { return r ? DropReasonName(*r) : "accepted"; }

// A datagram sealed by hand: lets a test choose every field of Sealed.
std::string SealByHand(const pb::Sealed& sealed, const ClusterKey& key) {
  pb::Envelope env;
  sealed.SerializeToString(env.mutable_sealed());
  std::string mac(crypto_auth_BYTES, '\0');
  crypto_auth(reinterpret_cast<unsigned char*>(mac.data()),
              reinterpret_cast<const unsigned char*>(env.sealed().data()), env.sealed().size(),
              key.bytes().data());
  env.set_mac(mac);
  return env.SerializeAsString();
}

pb::Sealed SealedFrom(const std::string& sender, uint64_t seq) {
  pb::Sealed s;
  s.set_version(kGossipVersion);
  s.set_cluster("prod");
  s.set_sender(sender);
  s.set_seq(seq);
  *s.mutable_body() = Ping(sender);
  return s;
}

// ---- Seal / Open round trip ----------------------------------------------------

TEST(Envelope, SealedMessageOpensOnPeerWithSameKeyAndClusterWithSameBody) {
  Envelope a("prod", "node-a", Key(kHexA), 1000);
  Envelope b("prod", "node-b", Key(kHexA), 1);
  pb::SwimMessage body = Ping("node-a");
  Envelope::Opened out;
  std::optional<DropReason> r = b.Open(a.Seal(body), &out);
  ASSERT_FALSE(r) << Outcome(r);
  EXPECT_EQ(out.sender, "node-a");
  EXPECT_EQ(out.body.SerializeAsString(), body.SerializeAsString())
      << "sent " << body.ShortDebugString() << "\ngot  " << out.body.ShortDebugString();
}

TEST(Envelope, DatagramFromADifferentKeyIsBadMac) {
  Envelope a("prod", "node-a", Key(kHexA), 1000);
  Envelope b("prod", "node-b", Key(kHexB), 1);
  Envelope::Opened out;
  EXPECT_EQ(b.Open(a.Seal(Ping("node-a")), &out), DropReason::kBadMac);
}

TEST(Envelope, DatagramFromAnotherClusterWithTheRightKeyIsWrongCluster) {
  Envelope a("staging", "node-a", Key(kHexA), 1000);
  Envelope b("prod", "node-b", Key(kHexA), 1);
  Envelope::Opened out;
  EXPECT_EQ(b.Open(a.Seal(Ping("node-a")), &out), DropReason::kWrongCluster);
}

TEST(Envelope, SameDatagramDeliveredTwiceIsReplayTheSecondTime) {
  Envelope a("prod", "node-a", Key(kHexA), 1000);
  Envelope b("prod", "node-b", Key(kHexA), 1);
  std::string d = a.Seal(Ping("node-a"));
  Envelope::Opened out;
  std::optional<DropReason> first = b.Open(d, &out);
  EXPECT_FALSE(first) << Outcome(first);
  EXPECT_EQ(b.Open(d, &out), DropReason::kReplay);
}

TEST(Envelope, OutOfOrderDeliveryWithinTheWindowIsAcceptedAndFarTooOldIsReplay) {
  Envelope a("prod", "node-a", Key(kHexA), 1000);
  Envelope b("prod", "node-b", Key(kHexA), 1);
  std::vector<std::string> d;
  for (int i = 0; i < 100; ++i) d.push_back(a.Seal(Ping("node-a")));  // seq 1000..1099
  Envelope::Opened out;
  std::optional<DropReason> r;
  r = b.Open(d[99], &out);
  EXPECT_FALSE(r) << "newest: " << Outcome(r);
  r = b.Open(d[98], &out);
  EXPECT_FALSE(r) << "one behind: " << Outcome(r);
  r = b.Open(d[36], &out);
  EXPECT_FALSE(r) << "63 behind, the oldest the window holds: " << Outcome(r);
  EXPECT_EQ(b.Open(d[35], &out), DropReason::kReplay) << "64 behind, just outside the window";
  EXPECT_EQ(b.Open(d[0], &out), DropReason::kReplay) << "99 behind";
  EXPECT_EQ(b.Open(d[36], &out), DropReason::kReplay) << "accepted once already";
}

TEST(Envelope, RestartedSenderWithALargerFirstSeqIsAccepted) {
  Envelope before("prod", "node-a", Key(kHexA), 1'000'000);
  Envelope b("prod", "node-b", Key(kHexA), 1);
  Envelope::Opened out;
  for (int i = 0; i < 10; ++i) ASSERT_FALSE(b.Open(before.Seal(Ping("node-a")), &out));
  Envelope after("prod", "node-a", Key(kHexA), 5'000'000);  // the clock moved on while it was down
  std::optional<DropReason> r = b.Open(after.Seal(Ping("node-a")), &out);
  EXPECT_FALSE(r) << Outcome(r);
  r = b.Open(after.Seal(Ping("node-a")), &out);
  EXPECT_FALSE(r) << Outcome(r);
}

TEST(Envelope, SendersHaveIndependentReplayWindows) {
  Envelope a("prod", "node-a", Key(kHexA), 1000);
  Envelope c("prod", "node-c", Key(kHexA), 1000);  // same seq numbers as node-a
  Envelope b("prod", "node-b", Key(kHexA), 1);
  Envelope::Opened out;
  std::optional<DropReason> r = b.Open(a.Seal(Ping("node-a")), &out);
  EXPECT_FALSE(r) << Outcome(r);
  r = b.Open(c.Seal(Ping("node-c")), &out);
  EXPECT_FALSE(r) << Outcome(r);
}

// ---- corrupted and hostile input ------------------------------------------------

TEST(Envelope, EverySingleBitFlipOfAValidDatagramIsRefused) {
  Envelope a("prod", "node-a", Key(kHexA), 1000);
  Envelope b("prod", "node-b", Key(kHexA), 1);
  const std::string d = a.Seal(Ping("node-a"));
  Envelope::Opened out;
  for (size_t bit = 0; bit < 8 * d.size(); ++bit) {
    std::string flipped = d;
    flipped[bit / 8] = static_cast<char>(flipped[bit / 8] ^ (1 << (bit % 8)));
    std::optional<DropReason> r = b.Open(flipped, &out);
    ASSERT_TRUE(r) << "byte " << bit / 8 << " bit " << bit % 8 << " flipped was accepted";
  }
  // The refusals were about the bytes, not the replay window: the original still opens.
  std::optional<DropReason> r = b.Open(d, &out);
  EXPECT_FALSE(r) << Outcome(r);
}

TEST(Envelope, EveryTruncationOfAValidDatagramIsRefused) {
  Envelope a("prod", "node-a", Key(kHexA), 1000);
  Envelope b("prod", "node-b", Key(kHexA), 1);
  const std::string d = a.Seal(Ping("node-a"));
  Envelope::Opened out;
  for (size_t len = 0; len < d.size(); ++len) {
    std::optional<DropReason> r = b.Open(d.substr(0, len), &out);
    ASSERT_TRUE(r) << "prefix of " << len << " of " << d.size() << " bytes was accepted";
  }
  std::optional<DropReason> r = b.Open(d, &out);
  EXPECT_FALSE(r) << Outcome(r);
}

TEST(Envelope, RandomGarbageIsRefusedAsMalformedOrBadMac) {
  Envelope b("prod", "node-b", Key(kHexA), 1);
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> len(0, 400), byte(0, 255);
  Envelope::Opened out;
  int malformed = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string g(static_cast<size_t>(len(rng)), '\0');
    for (char& c : g) c = static_cast<char>(byte(rng));
    std::optional<DropReason> r = b.Open(g, &out);
    // With a key, whatever gets past parsing must fail the MAC.
    ASSERT_TRUE(r == DropReason::kMalformed || r == DropReason::kBadMac) << "input " << i << ": " << Outcome(r);
    malformed += r == DropReason::kMalformed;
  }
  EXPECT_GT(malformed, 19000);
}

// `d` with an unknown field appended to the outer Envelope so that the whole
// is `total` bytes: it parses, and the MAC (over `sealed` only) still holds.
std::string PadTo(const std::string& d, size_t total) {
  std::string pad_field = "\x7a";  // field 15, length-delimited: unknown to Envelope
  size_t pad = total - d.size() - 1 - 3;  // 3-byte varint length below
  pad_field.push_back(static_cast<char>(0x80 | (pad & 0x7f)));
  pad_field.push_back(static_cast<char>(0x80 | ((pad >> 7) & 0x7f)));
  pad_field.push_back(static_cast<char>(pad >> 14));
  return d + pad_field + std::string(pad, 'x');
}

TEST(Envelope, DatagramLargerThanTheLargestUdpPayloadIsMalformed) {
  Envelope a("prod", "node-a", Key(kHexA), 1000);
  Envelope b("prod", "node-b", Key(kHexA), 1);
  Envelope::Opened out;
  std::string fits = PadTo(a.Seal(Ping("node-a")), kMaxDatagram);
  ASSERT_EQ(fits.size(), kMaxDatagram);
  std::optional<DropReason> r = b.Open(fits, &out);
  EXPECT_FALSE(r) << "largest payload: " << Outcome(r);
  std::string too_big = PadTo(a.Seal(Ping("node-a")), kMaxDatagram + 1);
  ASSERT_EQ(too_big.size(), kMaxDatagram + 1);
  EXPECT_EQ(b.Open(too_big, &out), DropReason::kMalformed);
}

TEST(Envelope, NewerVersionIsBadVersion) {
  Envelope b("prod", "node-b", Key(kHexA), 1);
  pb::Sealed s = SealedFrom("node-a", 1000);
  s.set_version(kGossipVersion + 1);
  Envelope::Opened out;
  EXPECT_EQ(b.Open(SealByHand(s, Key(kHexA)), &out), DropReason::kBadVersion);
  // The same message as version 1, sealed the same way, is fine: the hand sealing is right.
  s.set_version(kGossipVersion);
  std::optional<DropReason> r = b.Open(SealByHand(s, Key(kHexA)), &out);
  EXPECT_FALSE(r) << Outcome(r);
}

TEST(Envelope, MissingVersionIsBadVersion) {
  Envelope b("prod", "node-b", Key(kHexA), 1);
  pb::Sealed s = SealedFrom("node-a", 1000);
  s.clear_version();
  Envelope::Opened out;
  EXPECT_EQ(b.Open(SealByHand(s, Key(kHexA)), &out), DropReason::kBadVersion);
}

TEST(Envelope, InsecureModeAcceptsWithoutMacButStillChecksCluster) {
  Envelope a("prod", "node-a", std::nullopt, 1000);
  Envelope b("prod", "node-b", std::nullopt, 1);
  Envelope other("staging", "node-x", std::nullopt, 1000);
  Envelope::Opened out;
  std::optional<DropReason> r = b.Open(a.Seal(Ping("node-a")), &out);
  EXPECT_FALSE(r) << Outcome(r);
  EXPECT_EQ(out.sender, "node-a");
  EXPECT_EQ(b.Open(other.Seal(Ping("node-x")), &out), DropReason::kWrongCluster);
}

TEST(Envelope, KeyedReceiverRefusesADatagramFromAnInsecureSender) {
  Envelope a("prod", "node-a", std::nullopt, 1000);
  Envelope b("prod", "node-b", Key(kHexA), 1);
  Envelope::Opened out;
  EXPECT_EQ(b.Open(a.Seal(Ping("node-a")), &out), DropReason::kBadMac);
}

TEST(Envelope, MacOfTheWrongLengthIsMalformed) {
  Envelope a("prod", "node-a", std::nullopt, 1000);
  Envelope b("prod", "node-b", std::nullopt, 1);
  pb::Envelope env;
  ASSERT_TRUE(env.ParseFromString(a.Seal(Ping("node-a"))));
  env.mutable_mac()->pop_back();
  Envelope::Opened out;
  EXPECT_EQ(b.Open(env.SerializeAsString(), &out), DropReason::kMalformed);
}

TEST(Envelope, SenderNamedLikeTheReceiverIsInvalid) {
  // Our own datagram reflected back to us, or someone claiming our name.
  Envelope twin("prod", "node-b", Key(kHexA), 1000);
  Envelope b("prod", "node-b", Key(kHexA), 1);
  Envelope::Opened out;
  EXPECT_EQ(b.Open(twin.Seal(Ping("node-b")), &out), DropReason::kInvalid);
}

TEST(Envelope, BodyWhoseSelfNameDiffersFromTheSealedSenderIsInvalid) {
  Envelope a("prod", "node-a", Key(kHexA), 1000);
  Envelope b("prod", "node-b", Key(kHexA), 1);
  Envelope::Opened out;
  EXPECT_EQ(b.Open(a.Seal(Ping("node-z")), &out), DropReason::kInvalid);
}

TEST(Envelope, SenderWithABadNodeNameIsInvalid) {
  Envelope b("prod", "node-b", Key(kHexA), 1);
  pb::Sealed s = SealedFrom("node a", 1000);
  Envelope::Opened out;
  EXPECT_EQ(b.Open(SealByHand(s, Key(kHexA)), &out), DropReason::kInvalid);
}

TEST(Envelope, BodyFailingValidationIsInvalidAndDoesNotUseUpItsSequenceNumber) {
  Envelope b("prod", "node-b", Key(kHexA), 1);
  pb::Sealed s = SealedFrom("node-a", 1000);
  s.mutable_body()->mutable_self()->set_address("10.0.0.1");  // no port
  Envelope::Opened out;
  EXPECT_EQ(b.Open(SealByHand(s, Key(kHexA)), &out), DropReason::kInvalid);
  EXPECT_EQ(b.Open(SealByHand(SealedFrom("node-a", 1000), Key(kHexA)), &out), std::nullopt);
}

TEST(Envelope, DatagramWithoutABodyIsInvalid) {
  Envelope b("prod", "node-b", Key(kHexA), 1);
  pb::Sealed s = SealedFrom("node-a", 1000);
  s.clear_body();
  Envelope::Opened out;
  EXPECT_EQ(b.Open(SealByHand(s, Key(kHexA)), &out), DropReason::kInvalid);
}

// ---- ReplayWindow ------------------------------------------------------------------

TEST(ReplayWindow, AcceptsEachSequenceNumberOnce) {
  ReplayWindow w;
  EXPECT_TRUE(w.Accept(10));
  EXPECT_FALSE(w.Accept(10));
  EXPECT_TRUE(w.Accept(11));
  EXPECT_TRUE(w.Accept(9));
  EXPECT_FALSE(w.Accept(9));
  EXPECT_FALSE(w.Accept(11));
}

TEST(ReplayWindow, AcceptsSequenceZeroOnce) {
  ReplayWindow w;
  EXPECT_TRUE(w.Accept(0));
  EXPECT_FALSE(w.Accept(0));
}

TEST(ReplayWindow, HoldsTheLast64NumbersAndRefusesOlderOnes) {
  ReplayWindow w;
  ASSERT_TRUE(w.Accept(1000));
  EXPECT_TRUE(w.Accept(1000 - 63));
  EXPECT_FALSE(w.Accept(1000 - 64));
  EXPECT_FALSE(w.Accept(1));
}

TEST(ReplayWindow, AJumpWiderThanTheWindowForgetsWhatWasSeenBefore) {
  ReplayWindow w;
  ASSERT_TRUE(w.Accept(100));
  ASSERT_TRUE(w.Accept(100 + 64));  // 100 is now exactly 64 behind
  EXPECT_FALSE(w.Accept(100));
  EXPECT_TRUE(w.Accept(101));
  ASSERT_TRUE(w.Accept(1000));
  EXPECT_TRUE(w.Accept(999));
  EXPECT_FALSE(w.Accept(101));
}

TEST(ReplayWindow, ShiftWithinTheWindowKeepsWhatWasSeen) {
  ReplayWindow w;
  ASSERT_TRUE(w.Accept(100));
  ASSERT_TRUE(w.Accept(98));
  ASSERT_TRUE(w.Accept(130));  // 100 and 98 are now 30 and 32 behind
  EXPECT_FALSE(w.Accept(100));
  EXPECT_FALSE(w.Accept(98));
  EXPECT_TRUE(w.Accept(99));
}

// ---- ClusterKey ----------------------------------------------------------------------

TEST(ClusterKey, FromHexAccepts64HexCharactersWithWhitespace) {
  std::string spaced = " 00010203 04050607\t08090a0b0c0d0e0f\n101112131415161718191A1B1C1D1E1F\r\n";
  Result<ClusterKey> k = ClusterKey::FromHex(spaced);
  ASSERT_TRUE(k.ok()) << k.status().message();
  for (size_t i = 0; i < ClusterKey::kBytes; ++i) EXPECT_EQ(k->bytes()[i], i) << "byte " << i;
}

TEST(ClusterKey, FromHexRefuses63Or65CharactersAndNonHex) {
  std::string hex = kHexA;
  EXPECT_FALSE(ClusterKey::FromHex(hex.substr(0, 63)).ok());
  EXPECT_FALSE(ClusterKey::FromHex(hex + "0").ok());
  EXPECT_FALSE(ClusterKey::FromHex(hex.substr(0, 62)).ok());
  EXPECT_FALSE(ClusterKey::FromHex("").ok());
  std::string bad = hex;
  bad[17] = 'g';
  EXPECT_FALSE(ClusterKey::FromHex(bad).ok());
  bad = hex;
  bad[0] = ':';
  EXPECT_FALSE(ClusterKey::FromHex(bad).ok());
}

TEST(ClusterKey, GeneratedKeysParseAndDiffer) {
  std::string h1 = ClusterKey::GenerateHex(), h2 = ClusterKey::GenerateHex();
  Result<ClusterKey> k1 = ClusterKey::FromHex(h1), k2 = ClusterKey::FromHex(h2);
  ASSERT_TRUE(k1.ok()) << k1.status().message();
  ASSERT_TRUE(k2.ok()) << k2.status().message();
  EXPECT_NE(k1->bytes(), k2->bytes());
}

class ClusterKeyFile : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "roam_key_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    for (const auto& f : files_) ::unlink(f.c_str());
    ::rmdir(dir_.c_str());
  }
  std::string Write(const std::string& name, const std::string& text, mode_t mode) {
    std::string path = dir_ + "/" + name;
    FILE* f = std::fopen(path.c_str(), "w");
    EXPECT_NE(f, nullptr) << path;
    if (!f) return path;
    std::fputs(text.c_str(), f);
    std::fclose(f);
    EXPECT_EQ(::chmod(path.c_str(), mode), 0) << path;
    files_.push_back(path);
    return path;
  }
  std::string dir_;
  std::vector<std::string> files_;
};

TEST_F(ClusterKeyFile, LoadRefusesAFileReadableByOthersNamingThePath) {
  std::string path = Write("key", std::string(kHexA) + "\n", 0644);
  Result<ClusterKey> k = ClusterKey::Load(path);
  ASSERT_FALSE(k.ok());
  EXPECT_NE(k.status().message().find(path), std::string::npos) << k.status().message();
}

TEST_F(ClusterKeyFile, LoadRefusesAFileReadableByItsGroup) {
  std::string path = Write("key", std::string(kHexA) + "\n", 0640);
  EXPECT_FALSE(ClusterKey::Load(path).ok());
}

TEST_F(ClusterKeyFile, LoadAcceptsAPrivateFile) {
  std::string path = Write("key", std::string(kHexA) + "\n", 0600);
  Result<ClusterKey> k = ClusterKey::Load(path);
  ASSERT_TRUE(k.ok()) << k.status().message();
  EXPECT_EQ(k->bytes(), Key(kHexA).bytes());
}

TEST_F(ClusterKeyFile, LoadRefusesAPrivateFileOwnedBySomeoneElse) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  std::string path = Write("key", std::string(kHexA) + "\n", 0600);
  ASSERT_EQ(::chown(path.c_str(), 65534, 65534), 0);
  Result<ClusterKey> k = ClusterKey::Load(path);
  ASSERT_FALSE(k.ok());
  EXPECT_NE(k.status().message().find("owned by uid 65534"), std::string::npos) << k.status().message();
}

TEST_F(ClusterKeyFile, LoadOfAPrivateFileWithBadContentNamesThePath) {
  std::string path = Write("key", "not a key\n", 0600);
  Result<ClusterKey> k = ClusterKey::Load(path);
  ASSERT_FALSE(k.ok());
  EXPECT_NE(k.status().message().find(path), std::string::npos) << k.status().message();
}

TEST_F(ClusterKeyFile, LoadOfAMissingFileNamesThePath) {
  std::string path = dir_ + "/absent";
  Result<ClusterKey> k = ClusterKey::Load(path);
  ASSERT_FALSE(k.ok());
  EXPECT_NE(k.status().message().find(path), std::string::npos) << k.status().message();
}

}  // namespace
}  // namespace roam

