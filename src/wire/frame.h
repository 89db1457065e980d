// The one framing of roam's wire, shared by roamd and the roam CLI: on the
// control socket (proto/control.proto) and on node links (proto/link.proto,
// node/frame_channel.h, which adds an authentication tag after each frame),
// every protobuf message is preceded by its length as 4 bytes,
// little-endian. Frames over kMaxFrame are refused by every reader.
#pragma once

#include <google/protobuf/message_lite.h>

#include <cstdint>
#include <string>

#include "common/status.h"

namespace roam {

// Large enough for the largest message roam sends (a 4 MiB run of
// pre-copied pages, a 1 MiB image chunk, a `roam ps` of many processes).
constexpr uint32_t kMaxFrame = 16 << 20;

// The 4-byte length header of a frame whose message is `body_size` bytes.
std::string FrameHeader(size_t body_size);
std::string EncodeFrame(const google::protobuf::MessageLite& msg);
// Length announced by a 4-byte header.
uint32_t FrameLength(const unsigned char header[4]);

// Blocking helpers for the CLI (and tests): a whole frame or an error.
Status WriteFrame(int fd, const google::protobuf::MessageLite& msg);
Status ReadFrame(int fd, google::protobuf::MessageLite* msg);

}  // namespace roam
