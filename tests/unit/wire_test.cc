// The wire codec both binaries speak (src/wire): frames, and errors that
// keep their kind from one node to the next.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>

#include "control.pb.h"
#include "link.pb.h"
#include "wire/frame.h"
#include "wire/reply.h"

namespace roam {
namespace {

TEST(StatusCode, ErrnoGivesTheKindOfFailure) {
  EXPECT_EQ(Status::Errno("open x", ENOENT).code(), StatusCode::kNotFound);
  EXPECT_EQ(Status::Errno("kill 4", ESRCH).code(), StatusCode::kNotFound);
  EXPECT_EQ(Status::Errno("open x", EACCES).code(), StatusCode::kPermission);
  EXPECT_EQ(Status::Errno("clone3", EEXIST).code(), StatusCode::kBusy);
  EXPECT_EQ(Status::Errno("mmap", ENOMEM).code(), StatusCode::kNoRoom);
  EXPECT_EQ(Status::Errno("connect", ECONNREFUSED).code(), StatusCode::kUnavailable);
  EXPECT_EQ(Status::Errno("ioctl", ENOTTY).code(), StatusCode::kInternal);
  EXPECT_EQ(Status::Errno("open x", ENOENT).message(), "open x: No such file or directory");
  EXPECT_EQ(Status::Error("plain").code(), StatusCode::kInternal);
  EXPECT_TRUE(Status::Ok().ok());
  EXPECT_FALSE(Status::Error(StatusCode::kBusy, "x").ok());
}

TEST(StatusCode, OnlyTheNodesOwnFailuresSendAMoveElsewhere) {
  for (StatusCode c : {StatusCode::kBusy, StatusCode::kNoRoom, StatusCode::kRefused, StatusCode::kMismatch,
                       StatusCode::kUnavailable}) {
    EXPECT_TRUE(AnotherNodeMightDo(c)) << StatusCodeName(c);
  }
  for (StatusCode c : {StatusCode::kInternal, StatusCode::kInvalid, StatusCode::kNotFound, StatusCode::kPermission,
                       StatusCode::kCantMove}) {
    EXPECT_FALSE(AnotherNodeMightDo(c)) << StatusCodeName(c);
  }
}

TEST(StatusCode, PrefixKeepsTheCode) {
  Status st = Status::Error(StatusCode::kNoRoom, "no room").Prefixed("n3: ");
  EXPECT_EQ(st.code(), StatusCode::kNoRoom);
  EXPECT_EQ(st.message(), "n3: no room");
}

TEST(WireReply, AnErrorKeepsItsKindAcrossTheWire) {
  pb::LinkReply sent;
  SetReplyError(&sent, Status::Error(StatusCode::kMismatch, "/data/x differs on n3"));
  pb::LinkReply got;
  ASSERT_TRUE(got.ParseFromString(sent.SerializeAsString()));
  Status st = ReplyStatus(got);
  EXPECT_EQ(st.code(), StatusCode::kMismatch);
  EXPECT_EQ(st.message(), "/data/x differs on n3");
  EXPECT_TRUE(ReplyStatus(pb::LinkReply()).ok());
}

TEST(WireReply, AnOlderOrNewerNodesCodeReadsAsInternal) {
  pb::ControlReply r;
  r.set_error("from an older node");  // no code
  EXPECT_EQ(ReplyStatus(r).code(), StatusCode::kInternal);
  r.set_code(999);  // a kind this node does not know
  EXPECT_EQ(ReplyStatus(r).code(), StatusCode::kInternal);
  EXPECT_EQ(ReplyStatus(r).message(), "from an older node");
}

TEST(WireReply, ReplyWithPutsAValueOrACodedError) {
  pb::LinkReply out;
  auto reply = ReplyWith<pb::LinkReply, pb::MigrationFigures>(
      [&](pb::LinkReply m) { out = std::move(m); },
      [](pb::LinkReply& m, const pb::MigrationFigures& v) { *m.mutable_migration() = v; });
  pb::MigrationFigures f;
  f.set_to("n3");
  reply(f);
  EXPECT_TRUE(out.error().empty());
  EXPECT_EQ(out.migration().to(), "n3");
  reply(Status::Error(StatusCode::kPermission, "n1:4 belongs to another user"));
  EXPECT_EQ(ReplyStatus(out).code(), StatusCode::kPermission);
}

TEST(WireFrame, AFrameRoundTripsThroughAPipe) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  pb::ControlReply sent;
  SetReplyError(&sent, Status::Error(StatusCode::kRefused, "node n4 refuses guests (blocked)"));
  ASSERT_TRUE(WriteFrame(p[1], sent).ok());
  pb::ControlReply got;
  ASSERT_TRUE(ReadFrame(p[0], &got).ok());
  EXPECT_EQ(got.error(), sent.error());
  EXPECT_EQ(ReplyStatus(got).code(), StatusCode::kRefused);
  EXPECT_EQ(EncodeFrame(sent).size(), 4 + sent.ByteSizeLong());
  close(p[0]);
  close(p[1]);
}

TEST(WireFrame, OversizedOrTruncatedFramesAreErrors) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  std::string header = FrameHeader(kMaxFrame + 1);
  ASSERT_EQ(write(p[1], header.data(), 4), 4);
  pb::ControlReply got;
  Status st = ReadFrame(p[0], &got);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("too large"), std::string::npos) << st.message();
  // Damaged on purpose: a header announcing 10 bytes, 3 sent, then EOF.
  header = FrameHeader(10);
  ASSERT_EQ(write(p[1], header.data(), 4), 4);
  ASSERT_EQ(write(p[1], "abc", 3), 3);
  close(p[1]);
  st = ReadFrame(p[0], &got);
  EXPECT_FALSE(st.ok());
  close(p[0]);
}

}  // namespace
}  // namespace roam
