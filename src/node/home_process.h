// HomeProcess: the home node's record of one of its processes, wherever it
// runs now (the openMosix /proc/PID/{where,nmig,lock,cantmove}). The record
// lives from `roam run`'s request until the process's exit has reached
// `roam run` (remote) or the process has ended (run at home).
//
// The PID is `roam run`'s own: at home, `roam run` either becomes the
// process (exec, when placed at home) or stays as its deputy, holding the
// PID so that kill, ps and the parent's wait keep working (docs/HOME.md).
#pragma once

#include <sys/types.h>

#include <asio.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "session.pb.h"

namespace roam {

class RemoteRun;

// Milliseconds of the steady clock: the ages of records.
inline int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// "n1:4242" -> ("n1", 4242). False for anything else.
bool SplitGpid(const std::string& gpid, std::string* node, pid_t* pid);

struct HomeProcess {
  std::string gpid;
  pid_t pid = 0;
  pb::Credentials creds;
  std::string command;  // argv joined by spaces
  std::string where;    // node it runs on
  pb::SpawnRequest spawn;  // what started it (a move's target needs it again)
  bool lock = false;
  uint32_t nmig = 0;
  int64_t started_ms = 0;  // SteadyMs(), when the record was made
  int64_t moved_ms = 0;    // SteadyMs(), when it last arrived somewhere (0: never moved)
  double cpu_before_moves = 0;  // CPU seconds used where it ran before (a restored process starts from 0)
  pb::ProcStats stats;        // last figures (from the guest, or sampled here)
  uint64_t last_ticks = 0;    // for a process at home: CPU% between samples
  uint64_t last_sched_ns = 0;  // and the CPUs it wanted
  int64_t last_sample_ms = 0;
  std::shared_ptr<RemoteRun> remote;                      // when it runs elsewhere
  std::unique_ptr<asio::posix::stream_descriptor> pidfd;  // when it runs here
  // Its CPU time over its whole life, wherever it ran.
  double cpu_seconds() const { return cpu_before_moves + stats.time_seconds(); }
  // It has just arrived at `node`: one more move, and a new count of CPU time.
  void Arrived(const std::string& node) {
    where = node;
    nmig += 1;
    moved_ms = SteadyMs();
    cpu_before_moves += stats.time_seconds();
    stats.set_time_seconds(0);
  }
  // What its deputy is told once it is joined (from a move away from home,
  // or back after a move home failed): where it runs, and for a -t job the
  // terminal to relay and the mode to leave it in.
  pb::StreamFrame DeputyStarted() const {
    pb::StreamFrame f;
    pb::Started* s = f.mutable_started();
    s->set_gpid(gpid);
    s->set_where(where);
    if (spawn.spec().tty()) {
      s->set_tty(true);
      if (spawn.spec().has_termios()) *s->mutable_terminal_mode() = spawn.spec().termios();
    }
    return f;
  }
};

}  // namespace roam
