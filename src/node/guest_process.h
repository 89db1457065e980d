// GuestProcess: a process running on this node on behalf of another home,
// and the guest end of its session link. It relays the process's stdout
// and stderr to the home (reading a pipe only while the link's send queue is
// short, so a slow terminal at home slows the process), writes the home's
// stdin into the process (acknowledging what was taken, for the home's
// credit window), delivers signals and window sizes, sends resource figures
// every second, and finally the exit status, after the last output byte.
// If the process exits while others of its tree (children left running in
// the background) still hold its stdout or stderr, the exit status goes at
// once and their output follows until its end (output_end), as it would
// reach the terminal at home.
//
// If the link breaks before the process exits (home roamd died, roam run was
// killed, the network failed), the process's session is killed: a guest
// never outlives its home. Single-threaded, on roamd's io_context.
#pragma once

#include <asio.hpp>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "node/guest_spawn.h"
#include "node/link_mux.h"
#include "migrate.pb.h"
#include "session.pb.h"

namespace roam {

class GuestProcess : public std::enable_shared_from_this<GuestProcess> {
 public:
  GuestProcess(asio::io_context& io, std::shared_ptr<LinkSession> link, pb::SpawnRequest req, SpawnedGuest spawned);
  ~GuestProcess();

  // Starts relaying; `on_done` runs once the exit was sent or the link lost.
  void Start(std::function<void()> on_done);
  // It was spawned here just now (not moved in): its first figures wait a
  // sample period. Before Start.
  void set_started_here() { started_here_ = true; }
  // From roamd's SIGCHLD reaper.
  void Exited(int wait_status);
  // Kills the process's session (home declared dead, roamd shutting down).
  void KillAll();
  // Runs once if the process exits while others of its tree still hold its
  // output: the exit went home, and this relays their output until its end
  // (output_end). Its PID is then free here; signals go to its group.
  void set_on_root_exit(std::function<void()> f) { on_root_exit_ = std::move(f); }
  bool remnant() const { return remnant_; }

  // ---- migration (the source side's hooks; MigrationOut drives them)
  // Orders to move (move_out) go to this, for the process's whole stay
  // here: a move that failed leaves it movable.
  void set_move_order_handler(std::function<void(const pb::MoveOut&)> on_order) { on_move_order_ = std::move(on_order); }
  // During a move, its other frames from the home (move_decision) and the
  // loss of the home link go to these instead of the process.
  void set_move_handlers(std::function<void(const pb::StreamFrame&)> on_frame,
                         std::function<void()> on_link_lost);
  // The engine is about to freeze the process: stdin is no longer written
  // and roamd's reaper leaves the PID to the engine (it holds it traced).
  void BeginMove();
  // The process is frozen: sends everything it wrote (in its pipes) home.
  void DrainOutput();
  // Input the process has not read: in its stdin pipe or its terminal
  // (taken, acknowledged already), still queued here (pending), and whether
  // input had ended. A terminal's is taken out of it (and put back if the
  // move fails).
  void StdinLeftovers(std::string* taken, std::string* pending, bool* eof);
  // A -t job: its terminal's mode and size into `end` (false for a job with pipes).
  bool RecordTerminal(pb::ImageEnd* end) const;
  // How many bytes of it there are, leaving them where they are.
  size_t UnreadInput() const;
  // The move failed and the process runs on here.
  void MoveAborted();
  // The home said commit: the process runs at the target now, and this
  // copy is being killed. The home link closing from here on is the
  // move's end, not a loss.
  void MoveCommitted() { committed_ = true; }
  // The frozen copy is gone: ends quietly (no exit frame) and closes the
  // home link.
  void MovedAway();
  bool held() const { return held_; }
  void SendToHome(const pb::StreamFrame& f);
  // A process restored here by a move: input it had not read yet goes first.
  void PrependStdin(const std::string& taken, const std::string& pending, bool eof);

  pid_t pid() const { return spawned_.pid; }
  const std::string& home() const { return req_.home(); }
  const std::string& gpid() const { return req_.gpid(); }
  const pb::SpawnRequest& spawn() const { return req_; }
  uid_t uid() const { return req_.creds().uid(); }

 private:
  struct Output {
    std::unique_ptr<asio::posix::stream_descriptor> desc;
    bool is_stderr = false;
    bool eof = false;
    bool waiting = false;
  };

  void OnLinkFrame(pb::LinkFrame& f);
  void OnLinkClosed(const std::string& why);
  void ReadOutput(Output& o);
  bool ReadOnce(Output& o);  // false: nothing more now (EAGAIN or EOF)
  void WriteStdin();
  void Signal(const pb::SignalMsg& s);
  void SampleStats();
  void MaybeFinish();
  void SendExit(bool output_follows);

  std::shared_ptr<LinkSession> link_;
  pb::SpawnRequest req_;
  SpawnedGuest spawned_;
  Output out_, err_;
  asio::posix::stream_descriptor* in_desc_ = nullptr;  // out_'s for a tty
  std::unique_ptr<asio::posix::stream_descriptor> in_own_;
  std::deque<std::string> stdin_queue_;
  size_t stdin_offset_ = 0;  // into stdin_queue_.front()
  bool stdin_eof_ = false, stdin_closed_ = false, stdin_waiting_ = false;
  asio::steady_timer stats_timer_;
  uint64_t last_ticks_ = 0;
  uint64_t last_sched_ns_ = 0;
  int64_t last_sample_ms_ = 0;
  bool exited_ = false, finished_ = false;
  bool remnant_ = false;  // exited; output of the rest of its tree follows
  std::function<void()> on_root_exit_;
  int wait_status_ = 0;
  std::function<void()> on_done_;
  std::string buf_;
  bool held_ = false;        // the engine holds the process (a move is under way)
  bool committed_ = false;   // ... and the move committed
  bool sampled_ = false;     // a first figure was taken
  bool started_here_ = false;
  uint64_t preacked_ = 0;    // bytes at the front of stdin_queue_ acknowledged already
  std::string tty_taken_;    // a move took them out of the terminal: back if it fails
  bool tty_eof_written_ = false;  // the end of the home's input went into the terminal as ^D
  std::function<void(const pb::MoveOut&)> on_move_order_;
  std::function<void(const pb::StreamFrame&)> on_move_frame_;
  std::function<void()> on_move_link_lost_;
};

}  // namespace roam
