// Node-link framing and authentication (src/node/link_cipher.h,
// src/node/frame_channel.h): frames arrive whole and in order, and a frame
// altered, replayed or sealed with another key ends the connection.
#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/socket.h>

#include <cstring>

#include <asio.hpp>

#include "cluster/cluster_key.h"
#include "link.pb.h"
#include "node/frame_channel.h"
#include "node/link_cipher.h"

namespace roam {
namespace {

using Channel = FrameChannel<asio::local::stream_protocol::socket, pb::LinkFrame>;

ClusterKey Key(char c) { return *ClusterKey::FromHex(std::string(64, c)); }

TEST(LinkCipher, EachDirectionHasItsOwnKeyAndCounter) {
  auto k = Key('a');
  auto c2s = LinkCipher::Derive(k, "c2s", "nc", "ns");
  auto s2c = LinkCipher::Derive(k, "s2c", "nc", "ns");
  EXPECT_NE(c2s, s2c);
  LinkCipher client(c2s, s2c), server(s2c, c2s);
  auto t1 = client.Seal("one");
  auto t2 = client.Seal("two");
  EXPECT_FALSE(server.Open("two", t2.data()));  // out of order
  EXPECT_TRUE(server.Open("one", t1.data()));
  EXPECT_FALSE(server.Open("one", t1.data()));  // replayed
  EXPECT_FALSE(server.Open("twO", t2.data()));  // altered
  EXPECT_TRUE(server.Open("two", t2.data()));
}

// The tag is IETF ChaCha20-Poly1305 of the frame as associated data, the
// frame counter as nonce: what libsodium computed before OpenSSL did it, so
// nodes of both builds still understand each other. Frames of several
// sizes (Poly1305's block paths differ) and the counter must both count.
TEST(LinkCipher, TagsAreChaCha20Poly1305OfTheFrameAndCounter) {
  auto k = LinkCipher::Derive(Key('c'), "c2s", "nc", "ns");
  LinkCipher sealer(k, k);
  std::string frame;
  for (size_t i = 0; i < 70000; ++i) frame.push_back(static_cast<char>(i * 131 + 7));
  uint64_t counter = 0;
  for (size_t n : {size_t{0}, size_t{1}, size_t{15}, size_t{16}, size_t{17}, size_t{4096}, size_t{70000}}) {
    unsigned char nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES] = {};
    for (int i = 0; i < 8; ++i) nonce[i] = static_cast<unsigned char>(counter >> (8 * i));
    ++counter;
    unsigned char want[LinkCipher::kTagBytes];
    unsigned long long len = 0;
    unsigned char none[1] = {0};
    crypto_aead_chacha20poly1305_ietf_encrypt_detached(none, want, &len, none, 0,
                                                       reinterpret_cast<const unsigned char*>(frame.data()), n,
                                                       nullptr, nonce, k.data());
    auto got = sealer.Seal(frame.substr(0, n));
    EXPECT_EQ(0, std::memcmp(got.data(), want, sizeof(want))) << n << " bytes";
  }
}

TEST(LinkCipher, OtherClusterKeyOrNoncesGiveOtherKeys) {
  EXPECT_NE(LinkCipher::Derive(Key('a'), "c2s", "x", "y"), LinkCipher::Derive(Key('b'), "c2s", "x", "y"));
  EXPECT_NE(LinkCipher::Derive(Key('a'), "c2s", "x", "y"), LinkCipher::Derive(Key('a'), "c2s", "x", "z"));
  auto mac = LinkCipher::Derive(Key('a'), "server", "x", "y");
  EXPECT_TRUE(LinkCipher::EqualMac(std::string(mac.begin(), mac.end()), mac));
  EXPECT_FALSE(LinkCipher::EqualMac("short", mac));
}

struct Pair {
  asio::io_context io;
  std::shared_ptr<Channel> a, b;
  std::vector<std::string> got;
  std::string closed_b;
  Pair(bool cipher_a, bool cipher_b, char key_b = 'c') {
    asio::local::stream_protocol::socket sa(io), sb(io);
    asio::local::connect_pair(sa, sb);
    a = std::make_shared<Channel>(std::move(sa));
    b = std::make_shared<Channel>(std::move(sb));
    auto k1 = LinkCipher::Derive(Key('c'), "1", "n", "n");
    auto k2 = LinkCipher::Derive(Key(key_b), "1", "n", "n");
    if (cipher_a) a->set_cipher(std::make_unique<LinkCipher>(k1, k1));
    if (cipher_b) b->set_cipher(std::make_unique<LinkCipher>(k2, k2));
    a->Start([](pb::LinkFrame&) {}, [](const std::string&) {});
    b->Start([this](pb::LinkFrame& f) { got.push_back(f.stream().stdout_data()); },
             [this](const std::string& why) { closed_b = why; });
  }
  void Send(const std::string& data) {
    pb::LinkFrame f;
    f.mutable_stream()->set_stdout_data(data);
    a->Send(f);
  }
};

TEST(FrameChannel, FramesArriveWholeAndInOrder) {
  Pair p(true, true);
  std::string big(1 << 20, 'x');
  big[12345] = 'y';
  p.Send("first");
  p.Send(big);
  p.Send("");
  p.a->Close();
  p.io.run();
  ASSERT_EQ(p.got.size(), 3u);
  EXPECT_EQ(p.got[0], "first");
  EXPECT_EQ(p.got[1], big);
  EXPECT_EQ(p.got[2], "");
  EXPECT_EQ(p.closed_b, "connection closed by peer");
}

TEST(FrameChannel, WrongKeyEndsTheConnection) {
  Pair p(true, true, 'd');
  p.Send("hello");
  p.io.run();
  EXPECT_TRUE(p.got.empty());
  EXPECT_EQ(p.closed_b, "frame failed authentication");
}

TEST(FrameChannel, UnauthenticatedFrameToAnAuthenticatedChannelIsRefused) {
  Pair p(false, true);
  p.Send("no tag here, so the tag read eats the next bytes");
  p.a->Close();
  p.io.run();
  EXPECT_TRUE(p.got.empty());
  EXPECT_FALSE(p.closed_b.empty());
}

TEST(FrameChannel, OversizedLengthIsRefusedWithoutAllocating) {
  asio::io_context io;
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  asio::local::stream_protocol::socket s(io, asio::local::stream_protocol(), fds[1]);
  auto ch = std::make_shared<Channel>(std::move(s));
  std::string why;
  ch->Start([](pb::LinkFrame&) { FAIL(); }, [&](const std::string& w) { why = w; });
  const unsigned char huge[4] = {0xff, 0xff, 0xff, 0x7f};
  ASSERT_EQ(write(fds[0], huge, 4), 4);
  io.run();
  close(fds[0]);
  EXPECT_NE(why.find("too large"), std::string::npos);
}

TEST(FrameChannel, PausedChannelReadsNoFurtherFrameUntilResumed) {
  Pair p(false, false);
  // Pause() takes effect after the frame being delivered.
  p.b->set_handlers(
      [&p](pb::LinkFrame& f) {
        p.got.push_back(f.stream().stdout_data());
        p.b->Pause();
      },
      [](const std::string&) {});
  p.Send("one");
  p.Send("two");
  p.io.run_for(std::chrono::milliseconds(100));
  ASSERT_EQ(p.got.size(), 1u);
  p.b->Resume();
  p.io.restart();
  p.io.run_for(std::chrono::milliseconds(100));
  ASSERT_EQ(p.got.size(), 2u);
  EXPECT_EQ(p.got[1], "two");
}

}  // namespace
}  // namespace roam
