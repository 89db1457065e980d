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
#include <cstdint>
#include <memory>
#include <string>

#include "session.pb.h"

namespace roam {

class RemoteRun;

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
  pb::ProcStats stats;        // last figures (from the guest, or sampled here)
  uint64_t last_ticks = 0;    // for a process at home: CPU% between samples
  int64_t last_sample_ms = 0;
  std::shared_ptr<RemoteRun> remote;                      // when it runs elsewhere
  std::unique_ptr<asio::posix::stream_descriptor> pidfd;  // when it runs here
};

}  // namespace roam
