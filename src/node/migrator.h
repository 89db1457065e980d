// Migrator: this node's side of moves passing through it, as the target of
// a move (MigrationIn, from the home's `adopt` request until the process
// runs here or the move is undone) and as the source of a guest's move
// (MigrationOut, from the home's order until the guest has gone or
// resumed). The home's side, which arbitrates, is HomeRole's
// (docs/MIGRATION.md, "The three roles and the commit point").
//
// It owns the moves in and out by PID and GPID, and what arrived lately;
// a process that has arrived becomes a guest (GuestRole::Adopt). Whether a
// balancer's move still pays here, and how much memory ushering keeps
// free, it asks through `Admission` (the BalancerRole's).
//
// Single-threaded, on the NodeContext's loop; the engine's work runs on
// its thread (EngineWorker).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "node/balancer.h"
#include "node/guest_role.h"
#include "node/migration_in.h"
#include "node/migration_out.h"
#include "node/node_context.h"

namespace roam {

class Migrator {
 public:
  struct Admission {
    // A balancer's move (limit > 0) is admitted only while it still pays.
    std::function<Status(const std::string& gpid, double demand, double limit, uint64_t rss_bytes)> balanced;
    // The free memory a move must leave (ushering would move it away again).
    std::function<uint64_t()> memory_floor;
  };
  Migrator(NodeContext& node, GuestRole& guests, Admission admission)
      : node_(node), guests_(guests), admission_(std::move(admission)) {}

  // The target's side: the home asks whether this node takes the process
  // (link request `adopt`); yes, and the move waits for its source.
  void StartAdopt(std::shared_ptr<LinkSession> link, const std::string& peer, const pb::SpawnRequest& req,
                  uint64_t rss_bytes, double demand, double balance_limit, int attempt = 0);
  // The source's stream of a move adopted here (link request `move_in`).
  void StartMoveIn(std::shared_ptr<LinkSession> link, const std::string& peer, const pb::MoveIn& req);
  // The source's side: the home orders a guest here to move.
  void StartMoveOut(std::shared_ptr<GuestProcess> guest, const pb::MoveOut& order);

  bool MovingOut(pid_t pid) const { return outgoing_.count(pid) != 0; }

 private:
  NodeContext& node_;
  GuestRole& guests_;
  Admission admission_;
  std::map<pid_t, std::shared_ptr<MigrationOut>> outgoing_;  // moves out, by PID here
  // A move ordered while the last one still ends (StartMoveOut).
  std::map<pid_t, std::pair<std::shared_ptr<GuestProcess>, pb::MoveOut>> next_move_out_;
  // Moves in, by GPID, with the memory each was promised. A target counts
  // that, and what arrived since the last load sample, before it admits
  // another.
  struct IncomingMove {
    std::shared_ptr<MigrationIn> in;
    uint64_t rss_bytes = 0;
  };
  std::map<std::string, IncomingMove> incoming_;
  RecentMoves arrived_mem_{100};
};

}  // namespace roam
