// FrameChannel: roam's frames (wire/frame.h) over a stream socket (the
// control socket's UNIX stream or a node link's TCP), read and written
// asynchronously on one io_context. Frame = 4-byte little-endian length,
// the message, and, once a LinkCipher is installed, its 16-byte tag.
//
// Flow control: Pause() stops reading after the frame being delivered, so
// that a slow consumer downstream slows the sender (the kernel's socket
// buffers are the only buffer). Writes are queued; queued_bytes() tells how
// much, and on_drained fires when the queue empties, so the producer can
// stop reading its own source while the queue is non-empty.
//
// The channel is owned by shared_ptr (its pending operations hold one).
// on_close fires once, with a reason, when the peer closes, a frame is
// malformed or fails authentication, or Close() is called. Single-threaded.
#pragma once

#include <array>
#include <asio.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "node/link_cipher.h"
#include "wire/frame.h"

namespace roam {

template <typename Socket, typename Msg>
class FrameChannel : public std::enable_shared_from_this<FrameChannel<Socket, Msg>> {
 public:
  using OnFrame = std::function<void(Msg&)>;
  using OnClose = std::function<void(const std::string& why)>;

  explicit FrameChannel(Socket socket) : socket_(std::move(socket)) {}

  // Starts reading, unless it reads already (then as set_handlers).
  // Handlers may call any method, including Close().
  void Start(OnFrame on_frame, OnClose on_close) {
    on_frame_ = std::move(on_frame);
    on_close_ = std::move(on_close);
    if (!reading_) ReadHeader();
  }
  // Replaces the handlers; the next frame read goes to the new ones.
  void set_handlers(OnFrame on_frame, OnClose on_close) {
    on_frame_ = std::move(on_frame);
    on_close_ = std::move(on_close);
  }
  // From the next frame on, in both directions.
  void set_cipher(std::unique_ptr<LinkCipher> c) { cipher_ = std::move(c); }
  void set_on_drained(std::function<void()> f) { on_drained_ = std::move(f); }

  void Send(const Msg& m) { SendBody(m.SerializeAsString()); }
  // A message already serialized (or several concatenated, which protobuf
  // parses as one merged message). Header, body and tag go out as three
  // buffers of one write: a frame of pages is not copied again to put 4
  // bytes before it.
  void SendBody(std::string body) {
    if (closed_) return;
    Out& o = out_.emplace_back();
    o.head = FrameHeader(body.size());
    if (cipher_) {
      auto tag = cipher_->Seal(body);
      o.tag.assign(reinterpret_cast<const char*>(tag.data()), tag.size());
    }
    o.body = std::move(body);
    queued_ += o.size();
    if (!writing_) WriteNext();
  }

  size_t queued_bytes() const { return queued_; }
  // How fast the socket takes bytes when there is something to write:
  // bytes written over the time writes were pending, since the start; 0
  // until 4 MiB went. A slow link fills the kernel's buffer and writes
  // wait, so this falls to the link's speed; a fast one stays high.
  double drain_bps() const { return written_ >= (4u << 20) && write_secs_ > 0 ? written_ / write_secs_ : 0; }
  bool closed() const { return closed_; }
  // The size of the message being delivered, as it was on the wire.
  size_t frame_bytes() const { return body_.size(); }

  void Pause() { paused_ = true; }
  void Resume() {
    if (!paused_) return;
    paused_ = false;
    if (!reading_ && !closed_) ReadHeader();
  }

  // Closes once queued frames are written (Close(false): at once).
  void Close(const std::string& why = "closed", bool flush = true) {
    if (closed_) return;
    if (flush && writing_) {
      close_after_flush_ = why;
      return;
    }
    Shut(why);
  }

  Socket& socket() { return socket_; }

 private:
  void Shut(const std::string& why) {
    if (closed_) return;
    closed_ = true;
    asio::error_code ec;
    socket_.close(ec);
    out_.clear();
    queued_ = 0;
    if (auto f = std::move(on_close_)) f(why);
    on_frame_ = nullptr;
    on_drained_ = nullptr;
  }

  void ReadHeader() {
    if (closed_ || paused_) return;
    reading_ = true;
    auto self = this->shared_from_this();
    asio::async_read(socket_, asio::buffer(header_), [this, self](asio::error_code ec, size_t) {
      if (ec) return Shut(ec == asio::error::eof ? "connection closed by peer" : ec.message());
      const uint32_t n = FrameLength(header_);
      if (n > kMaxFrame) return Shut("frame of " + std::to_string(n) + " bytes is too large");
      const size_t tag = cipher_ ? LinkCipher::kTagBytes : 0;
      body_.resize(n + tag);
      asio::async_read(socket_, asio::buffer(body_), [this, self, n, tag](asio::error_code ec2, size_t) {
        reading_ = false;
        if (ec2) return Shut(ec2 == asio::error::eof ? "connection closed by peer" : ec2.message());
        std::string tag_bytes;
        if (tag) {
          tag_bytes = body_.substr(n);
          body_.resize(n);
          if (!cipher_->Open(body_, reinterpret_cast<const unsigned char*>(tag_bytes.data()))) {
            return Shut("frame failed authentication");
          }
        }
        Msg m;
        if (!m.ParseFromString(body_)) return Shut("malformed frame");
        // A copy: the handler may replace the handlers, destroying itself.
        if (OnFrame f = on_frame_) f(m);
        if (!reading_) ReadHeader();
      });
    });
  }

  void WriteNext() {
    if (out_.empty() || closed_) {
      writing_ = false;
      if (!close_after_flush_.empty()) return Shut(close_after_flush_);
      if (on_drained_ && !closed_) on_drained_();
      return;
    }
    writing_ = true;
    auto self = this->shared_from_this();
    const auto started = std::chrono::steady_clock::now();
    const Out& o = out_.front();
    std::array<asio::const_buffer, 3> bufs = {asio::buffer(o.head), asio::buffer(o.body), asio::buffer(o.tag)};
    asio::async_write(socket_, bufs, [this, self, started](asio::error_code ec, size_t n) {
      if (closed_) return;
      if (ec) return Shut(ec.message());
      written_ += static_cast<double>(n);
      write_secs_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      queued_ -= n;
      out_.pop_front();
      WriteNext();
    });
  }

  Socket socket_;
  std::unique_ptr<LinkCipher> cipher_;
  OnFrame on_frame_;
  OnClose on_close_;
  std::function<void()> on_drained_;
  unsigned char header_[4] = {};
  std::string body_;
  struct Out {
    std::string head, body, tag;
    size_t size() const { return head.size() + body.size() + tag.size(); }
  };
  std::deque<Out> out_;  // references stay valid while a write uses the front
  size_t queued_ = 0;
  double written_ = 0, write_secs_ = 0;
  bool writing_ = false, reading_ = false, paused_ = false, closed_ = false;
  std::string close_after_flush_;
};

}  // namespace roam
