// LinkMux: many sessions over one authenticated node link (proto/link.proto).
//
// A session is what one purpose needs of a link: a remote run's stdio, a
// move's image, a ps query. It behaves as a FrameChannel of its own (the
// same calls: Send, Pause, Close, queued_bytes ...), so the code above it
// does not know that other sessions share its connection.
//
// Flow control is per session and direction: a sender may have at most
// kWindow bytes the receiver has not yet consumed (delivered to its
// handler), and the receiver grants them back with `credit` frames as it
// consumes. A paused session therefore stops its own sender only, and the
// bytes a paused session holds are bounded by the window.
//
// Fairness: each session queues its own frames; the connection takes one
// frame at a time from the sessions with something to send, in turn, and
// keeps little in its own write queue and in the kernel (TCP_NOTSENT_LOWAT,
// node_link.cc). A small frame (a keystroke, a signal) waits for at most
// the frame being written, never for a whole stream of pages.
//
// Ends: a session closes when either side closes it (after the frames sent
// before the close were delivered), or when its connection ends: then every
// session of the connection closes, with the connection's reason.
//
// Single-threaded, on the connection's io_context. Sessions and the mux are
// owned by shared_ptr; the mux keeps its open sessions alive.
#pragma once

#include <asio.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "link.pb.h"
#include "node/node_link.h"

namespace roam {

class LinkMux;

class LinkSession : public std::enable_shared_from_this<LinkSession> {
 public:
  using OnFrame = std::function<void(pb::LinkFrame&)>;
  using OnClose = std::function<void(const std::string& why)>;

  // Bytes a sender may have unconsumed per session and direction.
  static constexpr size_t kWindow = 8 << 20;

  // `id` 0: a session opened here, numbered by its first frame (so that
  // the peer sees new sessions in the order of their numbers).
  LinkSession(std::shared_ptr<LinkMux> mux, uint32_t id);

  // Frames are delivered to the handlers in order, never from inside these
  // calls; while no frame handler is set, frames wait.
  void Start(OnFrame on_frame, OnClose on_close) { set_handlers(std::move(on_frame), std::move(on_close)); }
  void set_handlers(OnFrame on_frame, OnClose on_close);
  // Runs once the queued frames were all handed to the connection, later,
  // never inside Send() (as a socket's write completion).
  void set_on_drained(std::function<void()> f) { on_drained_ = std::move(f); }

  void Send(const pb::LinkFrame& m);
  // Bytes queued in this session, not yet handed to the connection.
  size_t queued_bytes() const { return queued_; }
  // How fast the connection took this session's bytes while some waited:
  // 0 until 4 MiB went (as FrameChannel::drain_bps).
  double drain_bps() const;
  bool closed() const { return closed_; }

  // Pause() takes effect after the frame being delivered.
  void Pause() { paused_ = true; }
  void Resume();

  // Closes once the queued frames are handed over (Close(why, false): at
  // once, dropping them). The peer's session sees "connection closed by
  // peer" after the frames sent before.
  void Close(const std::string& why = "closed", bool flush = true);

  asio::any_io_executor executor() const;
  uint32_t id() const { return id_; }

 private:
  friend class LinkMux;
  // From the mux.
  void Arrived(pb::LinkFrame& f, size_t bytes);
  void Ended(const std::string& why);  // the peer closed it, or the connection ended
  void Granted(uint64_t bytes);
  // The mux takes the next frame to write (REQUIRES: sendable()), then
  // tells the session once it took the last one (on_drained runs later).
  std::string TakeFrame();
  void Drained();
  bool sendable() const { return !out_.empty() && credit_ > 0; }

  void Deliver();
  void PostDeliver();
  void Shut(const std::string& why, bool tell_peer);

  std::shared_ptr<LinkMux> mux_;
  uint32_t id_;
  OnFrame on_frame_;
  OnClose on_close_;
  std::function<void()> on_drained_;
  std::deque<std::pair<pb::LinkFrame, size_t>> in_;
  std::deque<std::string> out_;
  size_t queued_ = 0;
  int64_t credit_ = kWindow;  // may go below 0 by one frame
  size_t consumed_ = 0;       // delivered, not yet granted back
  size_t held_ = 0;           // received, not yet delivered (at most the window and a frame)
  std::string ended_;         // why the peer side ended, once it has
  std::string close_after_flush_;
  std::chrono::steady_clock::time_point waiting_since_;
  double written_ = 0, write_secs_ = 0;
  bool paused_ = false, closed_ = false, delivering_ = false, deliver_posted_ = false, ready_ = false;
};

class LinkMux : public std::enable_shared_from_this<LinkMux> {
 public:
  using OnSession = std::function<void(std::shared_ptr<LinkSession>, const std::string& peer)>;
  using OnEnd = std::function<void(const std::string& why)>;

  // `conn` has finished its handshake with `peer`; `dialer` tells which side
  // of it this node was (the dialer numbers its sessions odd).
  // `on_session` gets each session the peer opens; it must set its handlers
  // (or keep it, to set them later). `on_end` runs once, when the connection
  // ends.
  LinkMux(std::shared_ptr<LinkConnection> conn, LinkPeer peer, bool dialer);
  ~LinkMux();
  void Start(OnSession on_session, OnEnd on_end);

  std::shared_ptr<LinkSession> Open();
  // Ends the connection and every session on it.
  void Close(const std::string& why);

  bool closed() const { return closed_; }
  const std::string& peer() const { return peer_.node; }
  const std::string& address() const { return peer_.address; }
  size_t sessions() const { return sessions_.size(); }
  asio::any_io_executor executor() { return conn_->socket().get_executor(); }

 private:
  friend class LinkSession;
  void FromPeer(pb::LinkFrame& f);
  void Ended(const std::string& why);
  // A session has a frame it may send.
  void Ready(LinkSession* s);
  void Pump();
  void SendControl(uint32_t id, pb::LinkFrame f);
  uint32_t Number(std::shared_ptr<LinkSession> s);
  void Forget(uint32_t id) { sessions_.erase(id); }

  std::shared_ptr<LinkConnection> conn_;
  const LinkPeer peer_;
  const bool dialer_;
  OnSession on_session_;
  OnEnd on_end_;
  std::map<uint32_t, std::shared_ptr<LinkSession>> sessions_;
  std::deque<std::weak_ptr<LinkSession>> ready_;
  uint32_t next_id_;
  uint32_t peer_max_id_ = 0;  // the highest id the peer opened
  bool closed_ = false, pumping_ = false;
};

}  // namespace roam
