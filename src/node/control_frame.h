// Framing of the control protocol (proto/control.proto) on the UNIX stream
// socket: each message is preceded by its length as 4 bytes, little-endian.
// Frames over kMaxControlFrame are refused by both sides.
#pragma once

#include <google/protobuf/message.h>

#include <cstdint>
#include <string>

#include "common/status.h"

namespace roam {

constexpr uint32_t kMaxControlFrame = 16 << 20;

std::string EncodeFrame(const google::protobuf::Message& msg);
// Length announced by a 4-byte header.
uint32_t FrameLength(const unsigned char header[4]);

// Blocking helpers for the client side (and tests): whole frame or an error.
Status WriteFrame(int fd, const google::protobuf::Message& msg);
Status ReadFrame(int fd, google::protobuf::Message* msg);

}  // namespace roam
