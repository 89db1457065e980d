#include "node/link_mux.h"

#include <algorithm>

namespace roam {

namespace {

// What the connection may hold in its own write queue before the next
// session's frame is taken (the kernel holds little more: node_link.cc).
constexpr size_t kConnectionQueue = 64 << 10;

// LinkFrame.session (field 20, varint), to append to a serialized frame:
// protobuf parses a concatenation as the merged message.
void AppendSession(std::string* body, uint32_t id) {
  body->push_back(static_cast<char>(0xa0));
  body->push_back(0x01);
  do {
    uint8_t b = id & 0x7f;
    id >>= 7;
    body->push_back(static_cast<char>(id ? b | 0x80 : b));
  } while (id);
}

double Seconds(std::chrono::steady_clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

// ---- LinkSession -------------------------------------------------------------

LinkSession::LinkSession(std::shared_ptr<LinkMux> mux, uint32_t id) : mux_(std::move(mux)), id_(id) {}

asio::any_io_executor LinkSession::executor() const { return mux_->executor(); }

void LinkSession::set_handlers(OnFrame on_frame, OnClose on_close) {
  on_frame_ = std::move(on_frame);
  on_close_ = std::move(on_close);
  if (on_frame_ && (!in_.empty() || !ended_.empty())) PostDeliver();
}

void LinkSession::Resume() {
  if (!paused_) return;
  paused_ = false;
  PostDeliver();
}

void LinkSession::Send(const pb::LinkFrame& m) {
  if (closed_) return;
  if (mux_->closed()) {  // opened on a connection that has just ended: it ends too, later
    if (ended_.empty()) ended_ = "the node link with " + mux_->peer() + " ended";
    return PostDeliver();
  }
  if (id_ == 0) id_ = mux_->Number(shared_from_this());
  // Room for the session field too: appending it must not copy a frame
  // of pages into a larger buffer.
  std::string body;
  body.reserve(m.ByteSizeLong() + 8);
  m.AppendToString(&body);
  AppendSession(&body, id_);
  if (out_.empty()) waiting_since_ = std::chrono::steady_clock::now();
  queued_ += body.size();
  out_.push_back(std::move(body));
  if (credit_ > 0) mux_->Ready(this);
}

double LinkSession::drain_bps() const { return written_ >= (4u << 20) && write_secs_ > 0 ? written_ / write_secs_ : 0; }

std::string LinkSession::TakeFrame() {
  std::string f = std::move(out_.front());
  out_.pop_front();
  queued_ -= f.size();
  credit_ -= static_cast<int64_t>(f.size());
  written_ += static_cast<double>(f.size());
  if (out_.empty()) write_secs_ += Seconds(std::chrono::steady_clock::now() - waiting_since_);
  return f;
}

void LinkSession::Drained() {
  if (!on_drained_ && close_after_flush_.empty()) return;
  // Later, as a socket's write completion would be: never inside a Send()
  // (a producer pumping on on_drained must not be re-entered mid-batch).
  asio::post(executor(), [self = shared_from_this()] {
    if (self->closed_ || !self->out_.empty()) return;  // more came: it drains again later
    if (!self->close_after_flush_.empty()) return self->Shut(self->close_after_flush_, true);
    if (self->on_drained_) {
      auto f = self->on_drained_;  // a copy: the handler may replace itself
      f();
    }
  });
}

void LinkSession::Granted(uint64_t bytes) {
  // A peer never grants more than it was sent; a lying one gains nothing.
  credit_ = std::min<int64_t>(credit_ + static_cast<int64_t>(std::min<uint64_t>(bytes, kWindow)), kWindow);
  if (sendable()) mux_->Ready(this);
}

void LinkSession::Close(const std::string& why, bool flush) {
  if (closed_) return;
  if (flush && !out_.empty()) {
    close_after_flush_ = why;
    return;
  }
  Shut(why, true);
}

void LinkSession::Arrived(pb::LinkFrame& f, size_t bytes) {
  if (closed_) return;
  held_ += bytes;
  if (held_ > kWindow + kMaxFrame) {  // the peer ignores its window: it could fill our memory
    return mux_->Close("node link: " + mux_->peer() + " sent beyond its window");
  }
  in_.emplace_back(std::move(f), bytes);
  Deliver();
}

void LinkSession::Ended(const std::string& why) {
  if (closed_) return;
  if (ended_.empty()) ended_ = why;
  Deliver();
}

void LinkSession::PostDeliver() {
  if (deliver_posted_ || closed_) return;
  deliver_posted_ = true;
  asio::post(executor(), [self = shared_from_this()] {
    self->deliver_posted_ = false;
    self->Deliver();
  });
}

void LinkSession::Deliver() {
  if (delivering_) return;
  auto keep = shared_from_this();
  delivering_ = true;
  while (!closed_ && !paused_ && on_frame_ && !in_.empty()) {
    auto [frame, bytes] = std::move(in_.front());
    in_.pop_front();
    held_ -= bytes;
    consumed_ += bytes;
    if (consumed_ >= kWindow / 4 && ended_.empty()) {
      pb::LinkFrame grant;
      grant.mutable_credit()->set_bytes(consumed_);
      mux_->SendControl(id_, std::move(grant));
      consumed_ = 0;
    }
    OnFrame handler = on_frame_;  // a copy: the handler may replace itself
    handler(frame);
  }
  delivering_ = false;
  // The peer's end comes after the frames it sent before it.
  if (!closed_ && in_.empty() && !ended_.empty()) Shut(ended_, false);
}

void LinkSession::Shut(const std::string& why, bool tell_peer) {
  if (closed_) return;
  closed_ = true;
  auto keep = shared_from_this();
  out_.clear();
  queued_ = 0;
  in_.clear();
  held_ = 0;
  if (id_ != 0) {
    if (tell_peer) {
      pb::LinkFrame f;
      f.mutable_close()->set_why(why);
      mux_->SendControl(id_, std::move(f));
    }
    mux_->Forget(id_);
  }
  if (auto f = std::move(on_close_)) f(why);
  on_frame_ = nullptr;
  on_close_ = nullptr;
  on_drained_ = nullptr;
}

// ---- LinkMux -----------------------------------------------------------------

LinkMux::LinkMux(std::shared_ptr<LinkConnection> conn, LinkPeer peer, bool dialer)
    : conn_(std::move(conn)), peer_(std::move(peer)), dialer_(dialer), next_id_(dialer ? 1 : 2) {}

LinkMux::~LinkMux() { conn_->Close("no longer used", false); }

void LinkMux::Start(OnSession on_session, OnEnd on_end) {
  on_session_ = std::move(on_session);
  on_end_ = std::move(on_end);
  std::weak_ptr<LinkMux> weak = weak_from_this();
  conn_->set_on_drained([weak] {
    if (auto m = weak.lock()) m->Pump();
  });
  conn_->Start(
      [weak](pb::LinkFrame& f) {
        if (auto m = weak.lock()) m->FromPeer(f);
      },
      [weak](const std::string& why) {
        if (auto m = weak.lock()) m->Ended(why);
      });
}

std::shared_ptr<LinkSession> LinkMux::Open() { return std::make_shared<LinkSession>(shared_from_this(), 0); }

uint32_t LinkMux::Number(std::shared_ptr<LinkSession> s) {
  const uint32_t id = next_id_;
  next_id_ += 2;
  sessions_[id] = std::move(s);
  return id;
}

void LinkMux::Close(const std::string& why) {
  if (closed_) return;
  conn_->Close(why, false);  // its on_close ends the sessions
  Ended(why);
}

void LinkMux::Ended(const std::string& why) {
  if (closed_) return;
  closed_ = true;
  auto keep = shared_from_this();
  auto sessions = std::move(sessions_);
  sessions_.clear();
  ready_.clear();
  for (auto& [id, s] : sessions) s->Ended(why);
  if (auto f = std::move(on_end_)) f(why);
  on_session_ = nullptr;
}

void LinkMux::FromPeer(pb::LinkFrame& f) {
  const size_t bytes = conn_->frame_bytes();
  const uint32_t id = f.session();
  if (id == 0) return Close("a frame without a session from " + peer_.node);
  auto it = sessions_.find(id);
  if (f.has_credit()) {
    if (it != sessions_.end()) it->second->Granted(f.credit().bytes());
    return;
  }
  if (it == sessions_.end()) {
    // Late frames of a session closed here are dropped; a higher number
    // of the peer's parity opens a new session.
    const bool theirs = (id % 2 == 1) != dialer_;
    if (!theirs || id <= peer_max_id_) return;
    peer_max_id_ = id;
    if (f.has_close()) return;
    auto s = std::make_shared<LinkSession>(shared_from_this(), id);
    sessions_[id] = s;
    if (on_session_) on_session_(s, peer_.node);
    s->Arrived(f, bytes);
    return;
  }
  auto s = it->second;
  if (f.has_close()) return s->Ended("connection closed by peer");
  s->Arrived(f, bytes);
}

void LinkMux::Ready(LinkSession* s) {
  if (!s->ready_ && !closed_) {
    s->ready_ = true;
    ready_.push_back(s->weak_from_this());
  }
  Pump();
}

void LinkMux::Pump() {
  if (pumping_) return;
  auto keep = shared_from_this();
  pumping_ = true;
  while (!closed_ && conn_->queued_bytes() < kConnectionQueue && !ready_.empty()) {
    std::shared_ptr<LinkSession> s = ready_.front().lock();
    ready_.pop_front();
    if (!s) continue;
    s->ready_ = false;
    if (s->closed_ || !s->sendable()) continue;
    conn_->SendBody(s->TakeFrame());
    if (s->out_.empty()) {
      s->Drained();
    } else if (s->sendable()) {
      s->ready_ = true;
      ready_.push_back(s);
    }
  }
  pumping_ = false;
}

void LinkMux::SendControl(uint32_t id, pb::LinkFrame f) {
  if (closed_) return;
  f.set_session(id);
  conn_->Send(f);
}

}  // namespace roam
