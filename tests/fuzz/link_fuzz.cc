// libFuzzer target for the node link's decoder (src/node/frame_channel.h,
// src/node/link_cipher.h): any bytes a peer can put on a roamd's TCP port.
//
// One input is fed, as a byte stream over a socket pair, to
//   1. a channel before the handshake (no cipher): every frame it delivers
//      must be a LinkFrame that survives serialize/parse unchanged, and the
//      channel must end with a reason once the peer closes;
//   2. a channel after the handshake (per-frame tags): no frame may be
//      delivered at all, since no input can carry a valid tag.
// Besides crashes and sanitizer reports, it aborts when one of these does
// not hold.
//
// Generator mode: with ROAM_FUZZ_WRITE_SEEDS=DIR set, the binary writes seed
// inputs (framed hello, spawn request and stream frames) into DIR and exits.
#include <sys/socket.h>
#include <unistd.h>

#include <asio.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "link.pb.h"
#include "node/frame_channel.h"
#include "node/link_cipher.h"

namespace roam {
namespace {

using Channel = FrameChannel<asio::local::stream_protocol::socket, pb::LinkFrame>;

[[noreturn]] void Violated(const std::string& what) {
  std::fprintf(stderr, "link_fuzz: property violated: %s\n", what.c_str());
  std::abort();
}

// Feeds `bytes` to a fresh channel and returns how many frames it delivered.
int Feed(const std::string& bytes, bool with_cipher) {
  asio::io_context io;
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) std::abort();
  // The writer side is a plain fd: a thread-free writer, since the socket
  // buffer may be smaller than the input.
  asio::local::stream_protocol::socket s(io, asio::local::stream_protocol(), fds[1]);
  auto ch = std::make_shared<Channel>(std::move(s));
  if (with_cipher) {
    LinkCipher::Key k{};
    k.fill(7);
    ch->set_cipher(std::make_unique<LinkCipher>(k, k));
  }
  int frames = 0;
  bool closed = false;
  ch->Start(
      [&](pb::LinkFrame& f) {
        ++frames;
        pb::LinkFrame again;
        if (!again.ParseFromString(f.SerializeAsString())) Violated("a delivered frame does not round-trip");
      },
      [&](const std::string& why) {
        if (why.empty()) Violated("channel closed without a reason");
        closed = true;
      });
  asio::posix::stream_descriptor writer(io, fds[0]);
  asio::async_write(writer, asio::buffer(bytes), [&](asio::error_code, size_t) {
    asio::error_code ignored;
    writer.close(ignored);
  });
  io.run();
  if (!closed) Violated("channel still open after the peer closed");
  return frames;
}

std::string Framed(const pb::LinkFrame& f) {
  std::string body = f.SerializeAsString();
  std::string out(4, '\0');
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>(body.size() >> (8 * i));
  return out + body;
}

void WriteSeeds(const char* dir) {
  pb::LinkFrame hello;
  hello.mutable_hello()->set_version(1);
  hello.mutable_hello()->set_cluster("fuzz");
  hello.mutable_hello()->set_node("n1");
  hello.mutable_hello()->set_nonce(std::string(32, 'n'));
  pb::LinkFrame spawn;
  spawn.mutable_request()->mutable_requester()->set_uid(1000);
  pb::SpawnRequest* s = spawn.mutable_request()->mutable_spawn();
  s->set_gpid("n1:42");
  s->set_home("n1");
  s->set_pid(42);
  s->mutable_spec()->add_argv("sha256sum");
  s->mutable_spec()->add_env("PATH=/usr/bin");
  s->mutable_spec()->set_cwd("/tmp");
  pb::LinkFrame data;
  data.mutable_stream()->set_stdin_data("hello");
  pb::LinkFrame sig;
  sig.mutable_stream()->mutable_signal()->set_signo(2);
  sig.mutable_stream()->mutable_signal()->set_group(true);
  pb::LinkFrame exit;
  exit.mutable_stream()->mutable_exit()->set_signal(9);
  const std::string seeds[] = {Framed(hello), Framed(hello) + Framed(spawn) + Framed(data) + Framed(sig),
                               Framed(exit), std::string("\xff\xff\xff\x7f", 4)};
  int i = 0;
  for (const auto& seed : seeds) {
    std::ofstream(std::string(dir) + "/seed" + std::to_string(i++), std::ios::binary) << seed;
  }
}

}  // namespace
}  // namespace roam

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("ROAM_FUZZ_WRITE_SEEDS")) {
    roam::WriteSeeds(dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (1 << 20)) return 0;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  roam::Feed(bytes, false);
  if (roam::Feed(bytes, true) != 0) roam::Violated("a frame without a valid tag was delivered");
  return 0;
}
