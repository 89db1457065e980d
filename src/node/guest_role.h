// GuestRole: the processes other homes run on this node, started here
// (`roam run` placed them) or moved in, until they end or move away.
// A guest whose first process exited while the rest of its tree still
// writes to its output stays, as a remnant, until that output ends: it
// cannot move, and its PID is free here.
// It owns the map of guests by PID and registers each with the child
// reaper; a guest's order to move (from its home) goes to `on_move_order`
// (the Migrator's source side).
//
// Single-threaded, on the NodeContext's loop.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "node/guest_process.h"
#include "node/node_context.h"

namespace roam {

class GuestRole {
 public:
  using MoveOrder = std::function<void(std::shared_ptr<GuestProcess>, const pb::MoveOut&)>;
  GuestRole(NodeContext& node, MoveOrder on_move_order) : node_(node), on_move_order_(std::move(on_move_order)) {}

  // A home's request to start a process here (link request `spawn`): the
  // reply says started, or why not; the link then carries its stdio.
  void Start(std::shared_ptr<LinkSession> link, const std::string& peer, const pb::SpawnRequest& req);
  // Registers a guest (started, or moved in), starts it, and lets it move.
  void Adopt(std::shared_ptr<GuestProcess> guest);
  // The home `node` is dead or gone: its guests here must not run on unseen.
  void HomeLost(const std::string& node, const std::string& state);
  // roamd leaves the cluster: every guest's tree is killed.
  void KillAll();

  bool Has(pid_t pid) const { return guests_.count(pid) != 0; }
  // The guest running as `pid`, if it is `guest` still (a move order may
  // outlive the guest it was for).
  bool Is(pid_t pid, const std::shared_ptr<GuestProcess>& guest) const;
  size_t size() const { return guests_.size(); }
  std::vector<std::string> gpids() const;
  // Guests whose root exited while the rest of their tree runs on here
  // until its output ends (remnants): they cannot move.
  std::vector<std::string> remnant_gpids() const;
  // Guests the engine does not hold (not moving), by PID, with their GPID.
  std::vector<std::pair<pid_t, std::string>> Settled() const;

 private:
  NodeContext& node_;
  MoveOrder on_move_order_;
  std::map<pid_t, std::shared_ptr<GuestProcess>> guests_;  // by PID here
  std::set<std::shared_ptr<GuestProcess>> remnants_;       // exited; output of the rest follows
};

}  // namespace roam
