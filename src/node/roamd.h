// Roamd: one node's daemon. Owns the event loop and the services every
// role shares (NodeContext: membership, node links, the engine's thread,
// the child reaper, job addresses, load), wires the membership state
// machine (Swim) to its UDP endpoint, and hands each request to the role
// that owns what it is about:
//
//   HomeRole (home_role.h)         the processes started here with `roam
//                                  run`, wherever they run, and the home's
//                                  side of their moves, which it arbitrates;
//   GuestRole (guest_role.h)       the processes other homes run here;
//   Migrator (migrator.h)          this node as the source or the target of
//                                  a move;
//   BalancerRole (balancer_role.h) the moves this home makes by itself, and
//                                  memory ushering.
//
// Each role owns its state; they reach each other only through the calls
// their headers declare. Roamd itself keeps the node-wide verbs (`roam
// node ...`, roamd_admin.cc), the load vector, and the reaction to members
// that die. Cron-style ticks drive everything periodic: the protocol tick
// (every 100 ms) and the load sample (every second).
//
// Single-threaded: every member runs on the loop; nothing here needs a
// lock. The one exception is the checkpoint engine, which runs on the
// EngineWorker's thread and reports back to the loop.
#pragma once

#include <asio.hpp>
#include <map>
#include <memory>
#include <optional>

#include "cluster/cluster_key.h"
#include "cluster/swim.h"
#include "node/balancer_role.h"
#include "node/control_server.h"
#include "node/gossip_endpoint.h"
#include "node/guest_role.h"
#include "node/home_role.h"
#include "node/migrator.h"
#include "node/node_context.h"
#include "node/roamd_config.h"

namespace roam {

// The first non-loopback IPv4 address, for a daemon bound to 0.0.0.0.
std::string FirstIpv4();

class Roamd {
 public:
  explicit Roamd(RoamdConfig config);
  ~Roamd();

  // Loads the key, binds the sockets, calibrates the speed. On failure
  // nothing is left listening.
  Status Init();
  // Runs until SIGTERM or SIGINT, then announces a graceful leave.
  void Run();
  // The cluster key (none with --insecure), once Init has loaded it.
  const std::optional<ClusterKey>& key() const { return key_; }
  // What `roam web` prints (the main sets it when the dashboard is on).
  void set_dashboard_url(std::string url) { dashboard_url_ = std::move(url); }

 private:
  void Handle(const pb::ControlRequest& req, const ControlServer::Peer& peer, ControlServer::Reply reply);
  pb::NodesReply Nodes() const;
  void OnMemberChange(MemberState old, const Member& m);
  // Node links: the first frame of a session a peer opened is its request.
  void OnLink(std::shared_ptr<LinkSession> link, const std::string& peer);
  void OnLinkRequest(std::shared_ptr<LinkSession> link, const std::string& peer, const pb::LinkRequest& req);

  // ---- roam node block|unblock|expel|bring|drain|balance|usher (roamd_admin.cc)
  using NodeAdminDone = std::function<void(Result<pb::NodeAdminReply>)>;
  void NodeAdmin(const pb::NodeAdminRequest& req, const pb::Credentials& requester, NodeAdminDone done);
  void MoveAll(const std::vector<std::string>& gpids, const std::string& to, const pb::Credentials& requester,
               NodeAdminDone done);

  void TickSwim();
  void SampleLoad();
  void PublishLoad();

  NodeContext node_;
  asio::steady_timer swim_timer_, load_timer_;
  asio::signal_set signals_;
  std::unique_ptr<GossipEndpoint> gossip_;
  std::unique_ptr<ControlServer> control_;
  LinkIdentity link_id_;
  // The roles, made in Init once the membership exists.
  std::unique_ptr<HomeRole> home_;
  std::unique_ptr<GuestRole> guests_;
  std::unique_ptr<Migrator> migrator_;
  std::unique_ptr<BalancerRole> balancer_;
  uint32_t calibrated_speed_ = 0;
  std::optional<ClusterKey> key_;
  std::string dashboard_url_;
  std::map<std::string, uint64_t> member_events_;  // for /metrics: membership events by the state entered
};

}  // namespace roam
