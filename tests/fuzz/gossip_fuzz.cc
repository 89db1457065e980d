// libFuzzer target for every decoder of roamd's network input.
//
// One input is tried as each thing the daemon decodes from the outside:
//   1. a UDP datagram, through Envelope::Open with the cluster key and in
//      insecure mode; an accepted body goes on to a Swim node (Receive, then
//      Ticks far enough ahead to run probes, suspicion, death and reaping);
//   2. a bare SwimMessage, checked by ValidateSwimMessage and, if valid,
//      received by a Swim node: this reaches the state machine with any
//      content, without having to forge a MAC;
//   3. a sequence of length-delimited SwimMessages delivered one after the
//      other to the same node (reaches relays, refutation, push-pull);
//   4. the control protocol: a ControlRequest whole and as the stream of
//      length-prefixed frames roamd reads from its UNIX socket (with the
//      daemon's own FrameLength), and the ControlReply `roam` decodes.
//
// Besides crashes and sanitizer reports, it aborts when one of these
// properties of the receive path does not hold:
//   - an accepted datagram is refused as a replay the second time;
//   - a valid SwimMessage survives Seal and Open unchanged;
//   - every message the node sends passes ValidateSwimMessage, goes to a
//     valid address and fits in a datagram (a peer would drop it otherwise);
//   - the node's own incarnation never goes down, it stays ALIVE, and
//     LiveCount() matches its table.
//
// Generator mode: with ROAM_FUZZ_WRITE_SEEDS=DIR set, the binary writes seed
// inputs (a real sealed datagram among them) into DIR and exits.
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/util/delimited_message_util.h>
#include <google/protobuf/util/message_differencer.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "cluster/envelope.h"
#include "cluster/swim.h"
#include "cluster/swim_validate.h"
#include "control.pb.h"
#include "wire/frame.h"

namespace roam {
namespace {

constexpr char kCluster[] = "fuzz";
constexpr char kSelf[] = "fuzz-self";
constexpr char kSelfAddress[] = "10.0.0.1:7946";
constexpr char kPeer[] = "fuzz-peer";  // the sender of the seed datagrams
constexpr char kPeerAddress[] = "10.0.0.2:7946";
constexpr char kKeyHex[] = "6b6579206f662074686520667a7a20636c757374657220666f72206c6962467a";
constexpr int64_t kStart = 1'700'000'000'000;  // ms, any origin works
constexpr uint64_t kSelfIncarnation = 1'700'000'000'000;

[[noreturn]] void Violated(const std::string& what) {
  std::fprintf(stderr, "gossip_fuzz: property violated: %s\n", what.c_str());
  std::abort();
}

ClusterKey FuzzKey() {
  Result<ClusterKey> k = ClusterKey::FromHex(kKeyHex);
  if (!k.ok()) Violated("fuzz key: " + k.status().message());
  return *k;
}

// Drops every message, after checking that a peer would accept it.
class CheckingTransport : public SwimTransport {
 public:
  void Send(const std::string& address, const pb::SwimMessage& msg) override {
    if (!IsValidAddress(address)) Violated("send to bad address \"" + address + "\"");
    Check(msg);
  }
  void Multicast(const pb::SwimMessage& msg) override { Check(msg); }

 private:
  static void Check(const pb::SwimMessage& msg) {
    Status st = ValidateSwimMessage(msg);
    if (!st.ok()) Violated("sent an invalid message (" + st.message() + "): " + msg.ShortDebugString());
    if (msg.self().name() != kSelf) Violated("sent a message in another's name: " + msg.ShortDebugString());
    // Room for the Sealed and Envelope framing, the names and the MAC.
    if (msg.ByteSizeLong() + 256 > kMaxDatagram) Violated("sent a message too big for a datagram");
  }
};

pb::MemberUpdate Update(const std::string& name, const std::string& address, pb::MemberState state,
                        uint64_t incarnation) {
  pb::MemberUpdate u;
  u.set_name(name);
  u.set_address(address);
  u.set_incarnation(incarnation);
  u.set_state(state);
  return u;
}

pb::LoadVector Load(const std::string& node, uint64_t stamp) {
  pb::LoadVector v;
  v.set_node(node);
  v.set_cpus(4);
  v.set_cpu_share(4);
  v.set_speed(1000);
  v.set_load(1.5);
  v.set_cpu_util(0.3);
  v.set_mem_total(8ull << 30);
  v.set_mem_free(3ull << 30);
  v.set_mem_pressure(0.1);
  v.set_accepts_guests(true);
  v.set_stamp(stamp);
  v.set_age_ms(100);
  return v;
}

// A node that has been up for a while: it knows live, suspect and dead
// members, has a probe in flight and a load vector of its own.
class Node {
 public:
  Node() : swim_(SwimConfig{}, kSelf, kSelfAddress, kSelfIncarnation, &transport_, /*seed=*/42) {
    std::vector<pb::MemberUpdate> known;
    known.push_back(Update(kPeer, kPeerAddress, pb::ALIVE, 10));
    for (int i = 3; i <= 8; ++i) {
      known.push_back(Update("n" + std::to_string(i), "10.0.0." + std::to_string(i) + ":7946", pb::ALIVE, 10));
    }
    known.push_back(Update("n9", "10.0.0.9:7946", pb::SUSPECT, 10));
    known.push_back(Update("n10", "10.0.0.10:7946", pb::DEAD, 10));
    known.push_back(Update("n11", "10.0.0.11:7946", pb::LEFT, 10));
    swim_.Seed(known, now_);
    swim_.SetSelfLoad(Load(kSelf, 0), now_);
    swim_.Start(now_, /*multicast=*/true, {kPeerAddress});
    Advance(SwimConfig{}.probe_interval_ms);  // a probe is in flight now
  }

  void Receive(const pb::SwimMessage& msg) {
    swim_.Receive(kPeerAddress, msg, now_);
    CheckInvariants("Receive");
  }

  // Ticks through `ms` in steps of `step` ms (the daemon's loop ticks every 50).
  void Advance(int64_t ms, int64_t step = 50) {
    for (int64_t end = now_ + ms; now_ < end;) {
      now_ = std::min(end, now_ + step);
      swim_.Tick(now_);
      CheckInvariants("Tick");
    }
  }

  // Far enough ahead for every timer: indirect probes, suspicion, death,
  // reconnects, and reaping of the dead a day later.
  void RunTimers() {
    Advance(300);
    Advance(10'000, 250);
    now_ += 25 * 3600 * 1000LL;
    swim_.Tick(now_);
    CheckInvariants("Tick after a day");
  }

 private:
  void CheckInvariants(const char* after) {
    const MemberTable& members = swim_.members();
    auto self = members.find(kSelf);
    if (self == members.end()) Violated(std::string("own member record gone after ") + after);
    if (self->second.state != pb::ALIVE) {
      Violated(std::string("own state is ") + MemberStateName(self->second.state) + " after " + after);
    }
    if (swim_.incarnation() < last_incarnation_) {
      Violated(std::string("own incarnation went down from ") + std::to_string(last_incarnation_) + " to " +
               std::to_string(swim_.incarnation()) + " after " + after);
    }
    last_incarnation_ = swim_.incarnation();
    size_t live = 0;
    for (const auto& [name, m] : members) {
      if (m.name != name) Violated("member " + name + " filed under another name");
      if (m.state < pb::ALIVE || m.state > pb::LEFT) Violated("member " + name + " in an unknown state");
      live += m.state == pb::ALIVE || m.state == pb::SUSPECT;
    }
    if (live != swim_.LiveCount()) {
      Violated("LiveCount() " + std::to_string(swim_.LiveCount()) + " but " + std::to_string(live) +
               " members alive or suspect after " + after);
    }
  }

  CheckingTransport transport_;
  int64_t now_ = kStart;
  Swim swim_;
  uint64_t last_incarnation_ = kSelfIncarnation;
};

// ---- 1. datagrams ------------------------------------------------------------------

void FuzzDatagram(const std::string& datagram, std::optional<ClusterKey> key) {
  Envelope receiver(kCluster, kSelf, key, 1);
  Envelope::Opened opened;
  if (receiver.Open(datagram, &opened)) return;
  Envelope::Opened again;
  if (receiver.Open(datagram, &again) != DropReason::kReplay) Violated("accepted the same datagram twice");
  Node node;
  node.Receive(opened.body);
  node.RunTimers();
}

// ---- 2. and 3. bare SwimMessages -------------------------------------------------------

// A valid message, sealed by its sender, opens unchanged on a receiver.
void CheckSealRoundTrip(const pb::SwimMessage& msg) {
  const std::string& sender = msg.self().name();
  if (sender == kSelf) return;  // refused as kInvalid, rightly
  Envelope from(kCluster, sender, FuzzKey(), 1);
  Envelope to(kCluster, kSelf, FuzzKey(), 1);
  std::string datagram = from.Seal(msg);
  if (datagram.size() > kMaxDatagram) return;  // could not be sent; Open refuses it, rightly
  Envelope::Opened opened;
  std::optional<DropReason> r = to.Open(datagram, &opened);
  if (r) Violated(std::string("valid message refused after sealing: ") + DropReasonName(*r));
  if (opened.sender != sender || !google::protobuf::util::MessageDifferencer::Equals(opened.body, msg)) {
    Violated("message changed by Seal and Open");
  }
}

void FuzzSwimMessage(const uint8_t* data, size_t size) {
  pb::SwimMessage msg;
  if (!msg.ParseFromArray(data, static_cast<int>(size)) || !ValidateSwimMessage(msg).ok()) return;
  CheckSealRoundTrip(msg);
  Node node;
  node.Receive(msg);
  node.RunTimers();
}

void FuzzSwimSequence(const uint8_t* data, size_t size) {
  google::protobuf::io::ArrayInputStream in(data, static_cast<int>(size));
  std::optional<Node> node;
  for (int i = 0; i < 16; ++i) {
    pb::SwimMessage msg;
    bool clean_eof = false;
    if (!google::protobuf::util::ParseDelimitedFromZeroCopyStream(&msg, &in, &clean_eof)) break;
    if (!ValidateSwimMessage(msg).ok()) continue;
    if (!node) node.emplace();
    node->Receive(msg);
    node->Advance(100);
  }
  if (node) node->RunTimers();
}

// ---- 4. control requests -----------------------------------------------------------------

// As roamd's ControlServer reads its socket: frames of a 4-byte length and a
// ControlRequest, until one is too large, cut short or malformed.
void FuzzControlStream(const uint8_t* data, size_t size) {
  pb::ControlRequest req;
  (void)req.ParseFromArray(data, static_cast<int>(size));
  pb::ControlReply reply;  // what `roam` decodes from roamd
  (void)reply.ParseFromArray(data, static_cast<int>(size));
  size_t pos = 0;
  while (size - pos >= 4) {
    uint32_t n = FrameLength(data + pos);
    pos += 4;
    if (n > kMaxFrame || n > size - pos) break;
    if (!req.ParseFromString(std::string(reinterpret_cast<const char*>(data + pos), n))) break;
    pos += n;
  }
}

// ---- seeds ----------------------------------------------------------------------------------

pb::SwimMessage FromPeer(pb::SwimMessage::Kind kind) {
  pb::SwimMessage m;
  m.set_kind(kind);
  *m.mutable_self() = Update(kPeer, kPeerAddress, pb::ALIVE, 11);
  return m;
}

std::string Delimited(const std::vector<pb::SwimMessage>& msgs) {
  std::string out;
  google::protobuf::io::StringOutputStream stream(&out);
  for (const auto& m : msgs) google::protobuf::util::SerializeDelimitedToZeroCopyStream(m, &stream);
  return out;
}

void WriteSeeds(const std::string& dir) {
  std::vector<std::pair<std::string, std::string>> seeds;
  seeds.emplace_back("empty", "");

  pb::SwimMessage ping = FromPeer(pb::SwimMessage::PING);
  ping.set_probe_id(7);
  *ping.add_updates() = Update("n12", "10.0.0.12:7946", pb::ALIVE, 3);
  *ping.add_updates() = Update("n4", "10.0.0.4:7946", pb::SUSPECT, 10);
  *ping.add_updates() = Update(kSelf, kSelfAddress, pb::SUSPECT, kSelfIncarnation);  // accuses us
  *ping.add_loads() = Load(kPeer, 5);
  *ping.add_loads() = Load("n3", 9);
  Envelope keyed_sender(kCluster, kPeer, FuzzKey(), 1000);
  Envelope insecure_sender(kCluster, kPeer, std::nullopt, 1000);
  seeds.emplace_back("datagram_keyed_ping", keyed_sender.Seal(ping));
  seeds.emplace_back("datagram_insecure_ping", insecure_sender.Seal(ping));
  seeds.emplace_back("datagram_keyed_announce", keyed_sender.Seal(FromPeer(pb::SwimMessage::ANNOUNCE)));
  seeds.emplace_back("swim_ping", ping.SerializeAsString());

  pb::SwimMessage ping_req = FromPeer(pb::SwimMessage::PING_REQ);
  ping_req.set_probe_id(3);
  ping_req.set_target("n5");
  ping_req.set_target_address("10.0.0.5:7946");
  seeds.emplace_back("swim_ping_req", ping_req.SerializeAsString());

  pb::SwimMessage sync = FromPeer(pb::SwimMessage::SYNC);
  sync.set_sync_reply_wanted(true);
  for (int i = 10; i < 18; ++i) {
    *sync.add_updates() = Update("n" + std::to_string(i), "10.0.1." + std::to_string(i) + ":7946",
                                 static_cast<pb::MemberState>(1 + i % 4), 20);
    *sync.add_loads() = Load("n" + std::to_string(i), 1);
  }
  seeds.emplace_back("swim_sync", sync.SerializeAsString());

  pb::SwimMessage leave = FromPeer(pb::SwimMessage::LEAVE);
  leave.mutable_self()->set_state(pb::LEFT);
  *leave.add_updates() = leave.self();
  seeds.emplace_back("swim_leave", leave.SerializeAsString());

  // A dead member talks again, asks us to probe for it, then the answer comes.
  pb::SwimMessage revived = FromPeer(pb::SwimMessage::GOSSIP);
  *revived.mutable_self() = Update("n10", "10.0.0.10:7946", pb::ALIVE, 11);
  pb::SwimMessage relay_ack = FromPeer(pb::SwimMessage::ACK);
  relay_ack.set_target("n5");
  relay_ack.set_probe_id(3);
  seeds.emplace_back("swim_sequence", Delimited({revived, ping_req, relay_ack, ping}));

  pb::ControlRequest nodes, speed, block;
  nodes.mutable_nodes();
  speed.mutable_set_speed()->set_speed(1500);
  block.mutable_node_admin()->set_verb(pb::NodeAdminRequest::BLOCK);
  seeds.emplace_back("control_nodes", nodes.SerializeAsString());
  seeds.emplace_back("control_stream", EncodeFrame(nodes) + EncodeFrame(speed) + EncodeFrame(block));

  for (const auto& [name, bytes] : seeds) {
    std::ofstream f(dir + "/" + name, std::ios::binary | std::ios::trunc);
    f << bytes;
    if (!f) {
      std::fprintf(stderr, "gossip_fuzz: cannot write %s/%s\n", dir.c_str(), name.c_str());
      std::exit(1);
    }
  }
  std::fprintf(stderr, "gossip_fuzz: wrote %zu seeds to %s\n", seeds.size(), dir.c_str());
}

}  // namespace
}  // namespace roam

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // libprotobuf logs every string field that is not UTF-8; at thousands of
  // inputs a second that is only noise.
  google::protobuf::SetLogHandler(nullptr);
  if (const char* dir = std::getenv("ROAM_FUZZ_WRITE_SEEDS")) {
    roam::WriteSeeds(dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  roam::FuzzDatagram(bytes, roam::FuzzKey());
  roam::FuzzDatagram(bytes, std::nullopt);
  roam::FuzzSwimMessage(data, size);
  roam::FuzzSwimSequence(data, size);
  roam::FuzzControlStream(data, size);
  return 0;
}
