#include "wire/frame.h"

#include <unistd.h>

#include <cerrno>

namespace roam {

std::string FrameHeader(size_t body_size) {
  const uint32_t n = static_cast<uint32_t>(body_size);
  std::string out(4, '\0');
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out;
}

std::string EncodeFrame(const google::protobuf::MessageLite& msg) { return FrameHeader(msg.ByteSizeLong()) + msg.SerializeAsString(); }

uint32_t FrameLength(const unsigned char h[4]) {
  return uint32_t{h[0]} | uint32_t{h[1]} << 8 | uint32_t{h[2]} << 16 | uint32_t{h[3]} << 24;
}

static Status ReadExact(int fd, char* p, size_t n) {
  while (n > 0) {
    ssize_t r = ::read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::Errno("read control socket");
    if (r == 0) return Status::Error("control socket closed by roamd");
    p += r;
    n -= static_cast<size_t>(r);
  }
  return Status::Ok();
}

Status WriteFrame(int fd, const google::protobuf::MessageLite& msg) {
  std::string frame = EncodeFrame(msg);
  const char* p = frame.data();
  size_t n = frame.size();
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return Status::Errno("write control socket");
    p += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

Status ReadFrame(int fd, google::protobuf::MessageLite* msg) {
  unsigned char header[4];
  if (Status st = ReadExact(fd, reinterpret_cast<char*>(header), 4); !st.ok()) return st;
  uint32_t n = FrameLength(header);
  if (n > kMaxFrame) return Status::Error("control frame too large");
  std::string body(n, '\0');
  if (Status st = ReadExact(fd, body.data(), n); !st.ok()) return st;
  if (!msg->ParseFromString(body)) return Status::Error("malformed control message");
  return Status::Ok();
}

}  // namespace roam
