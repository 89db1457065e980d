// Roamd: one node's daemon. Owns the event loop and wires together the
// membership state machine (Swim), its UDP endpoint, the load sampler and
// the local control socket. Cron-style ticks drive everything periodic:
// the protocol tick (every 100 ms) and the load sample (every second).
//
// Single-threaded: every member runs on io_; nothing here needs a lock.
#pragma once

#include <asio.hpp>
#include <memory>

#include "cluster/swim.h"
#include "node/control_server.h"
#include "node/gossip_endpoint.h"
#include "node/load_sampler.h"
#include "node/roamd_config.h"

namespace roam {

class Roamd {
 public:
  explicit Roamd(RoamdConfig config);
  ~Roamd();

  // Loads the key, binds the sockets, calibrates the speed. On failure
  // nothing is left listening.
  Status Init();
  // Runs until SIGTERM or SIGINT, then announces a graceful leave.
  void Run();

 private:
  pb::ControlReply Handle(const pb::ControlRequest& req, uid_t uid);
  pb::NodesReply Nodes() const;
  void TickSwim();
  void SampleLoad();
  void PublishLoad();
  int64_t Now() const;

  RoamdConfig cfg_;
  asio::io_context io_;
  asio::steady_timer swim_timer_, load_timer_;
  asio::signal_set signals_;
  std::unique_ptr<GossipEndpoint> gossip_;
  std::unique_ptr<Swim> swim_;
  std::unique_ptr<ControlServer> control_;
  LoadSampler sampler_;
  uint32_t calibrated_speed_ = 0;
  pb::LoadVector last_load_;
  int64_t last_sample_ms_ = 0;
};

}  // namespace roam
