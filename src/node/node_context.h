// NodeContext: what the roles of roamd (roamd.h) share: the event loop, the membership, the node links, the engine's
// thread, the child reaper, the job addresses on this node, this node's
// load, and the settings every move is made with.
//
// Roamd owns it, fills it in Init, and outlives the roles that hold a
// reference to it (home_role.h, guest_role.h, migrator.h, balancer_role.h).
// Each role owns its own state; what is here belongs to no role. Every
// member is used on `io` only.
#pragma once

#include <asio.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "cluster/swim.h"
#include "common/status.h"
#include "link.pb.h"
#include "node/child_reaper.h"
#include "node/engine_worker.h"
#include "node/job_address.h"
#include "node/link_pool.h"
#include "node/load_sampler.h"
#include "node/move_faults.h"
#include "node/page_codec.h"
#include "node/roamd_config.h"

namespace roam {

struct NodeContext {
  explicit NodeContext(RoamdConfig config) : cfg(std::move(config)), reaper(io) {}
  NodeContext(const NodeContext&) = delete;
  NodeContext& operator=(const NodeContext&) = delete;

  // Monotonic milliseconds whose origin is the wall clock's (as it was when
  // roamd started): timeouts never jump with the wall clock, and nodes whose
  // clocks agree (NTP; one host in `roam cluster`) count protocol periods
  // alike, which the shared probe order (src/cluster/swim.h) needs.
  static int64_t Now();
  const std::string& name() const { return swim->name(); }
  // A member's link address (host:port); empty for a node not known.
  std::string AddressOf(const std::string& node) const;
  // One request to another node's roamd and its reply, or kUnavailable
  // once `timeout` has passed without one.
  void AskNode(const std::string& node, pb::LinkRequest req, std::function<void(Result<pb::LinkReply>)> done,
               std::chrono::seconds timeout = std::chrono::seconds(5));
  // This node's load vector, with every role's counters, sent with the
  // next gossip (Roamd::PublishLoad).
  void PublishLoad() { publish_load(); }

  RoamdConfig cfg;
  asio::io_context io;
  ChildReaper reaper;  // waits for roamd's children, by PID (each role registers its own)
  std::unique_ptr<Swim> swim;
  std::unique_ptr<LinkPool> links;  // one connection per peer, many sessions
  std::unique_ptr<EngineWorker> engine;
  JobAddresses addresses;  // the job addresses on this node now
  LoadSampler sampler;
  pb::LoadVector last_load;    // sampled every second
  int64_t last_sample_ms = 0;  // Now(), when
  bool draining = false;       // roam node drain: blocked, guests being moved away
  MoveFaults faults;           // the fault-injection seam (tests only)
  CodecChooser codec;          // roamd.conf compress: each move starts from a copy
  std::string roam_path;       // the `roam` beside this roamd: what a process leaving home execs
  std::string run_dir;         // the control socket's directory: move images, the fault file
  std::function<void()> publish_load;
};

// Sends one reply on a link session.
void SendReply(const std::shared_ptr<LinkSession>& link, pb::LinkReply reply);

}  // namespace roam
