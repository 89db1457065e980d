// HomeRole: the processes started on this node with `roam run`, wherever
// they run now (docs/HOME.md), and the home's side of their moves, which
// it arbitrates (docs/MIGRATION.md): where a process may go, one move at a
// time, the process leaving home (HomeDeparture) and coming back
// (HomeArrival). `roam ps`, `roam kill`, `roam lock` and `roam migrate`
// about this home's processes end here, from any node.
//
// It owns the records by PID (HomeProcess), the spawns sent to guests and
// not yet answered, the addresses just chosen for jobs, the departures and
// arrivals under way, and the move counters of /metrics.
//
// Single-threaded, on the NodeContext's loop.
#pragma once

#include <asio.hpp>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "control.pb.h"
#include "node/control_server.h"
#include "node/home_arrival.h"
#include "node/home_departure.h"
#include "node/home_process.h"
#include "node/move_counters.h"
#include "node/node_context.h"
#include "node/placement.h"
#include "node/remote_run.h"

namespace roam {

// What a balancer's move tells its target (the adopt request): the
// process's CPU demand and the source's load it must stay below (none for
// a move someone asked for).
struct BalanceTag {
  double demand = 0;
  double limit = 0;
};

class HomeRole {
 public:
  using MoveDone = std::function<void(Result<pb::MigrationFigures>)>;
  using ProgressDone = std::function<void(Result<pb::MoveProgress>)>;
  using ErrorDone = std::function<void(const std::string& error)>;  // empty: done
  explicit HomeRole(NodeContext& node) : node_(node) {}

  // ---- roam run (home_role.cc)
  // A `roam run` on the control socket: placed here or on a guest, or (a
  // take_over) the deputy of a process that is moving.
  void StartRun(const pb::RunRequest& req, const ControlServer::Peer& peer,
                asio::local::stream_protocol::socket socket);
  void Ps(bool all, const pb::Credentials& requester, std::function<void(pb::PsReply)> done);
  pb::PsReply LocalPs(const pb::Credentials& requester) const;
  void Kill(const std::string& gpid, int signo, const pb::Credentials& requester, ErrorDone done);
  // Empty, or why not.
  std::string KillHere(pid_t pid, int signo, const pb::Credentials& requester);
  // Figures of the processes running here, every load sample.
  void SampleProcesses();
  // The node `node` is dead or gone: the processes of ours there are lost.
  void NodeLost(const std::string& node, const std::string& why);

  // ---- moves (home_moves.cc)
  // `roam migrate` of any process: forwarded to its home if not ours.
  void Migrate(const std::string& gpid, const std::string& to, const pb::Credentials& requester, MoveDone done);
  // A move of our process `pid` to `to` (a node, "home" or "best").
  void MigrateHere(pid_t pid, const std::string& to, const pb::Credentials& requester, MoveDone done,
                   BalanceTag tag = {});
  void MoveProgressOf(const std::string& gpid, const pb::Credentials& requester, ProgressDone done);
  void Lock(const std::string& gpid, bool lock, const pb::Credentials& requester, ErrorDone done);
  // A source's stream of a process coming home (link request `move_in`).
  // False: no arrival of that GPID is under way here.
  bool AcceptArrival(std::shared_ptr<LinkSession> link, const std::string& peer, const pb::MoveIn& req);

  // ---- what the balancer and roamd read
  const std::map<pid_t, HomeProcess>& processes() const { return home_; }
  // A move of it is under way (leaving home, or moving between guests).
  bool Moving(pid_t pid) const;
  // Our processes running elsewhere (roam node bring).
  std::vector<std::string> Away() const;
  int placing() const { return placing_.total(); }
  const MoveCounters& move_counters() const { return move_counters_; }

 private:
  // Tries candidates in order until one guest accepts (or home is next).
  void PlaceRun(std::shared_ptr<ClientChannel> client, pb::SpawnRequest spawn, std::vector<std::string> candidates,
                bool explicit_target, bool lock);
  void RunHere(std::shared_ptr<ClientChannel> client, const pb::SpawnRequest& spawn, bool lock);
  // The address a job asked for (`asked`: "auto" or one of the pool), free
  // on the network (job_address.h).
  void ChooseJobAddress(const std::string& asked, std::function<void(Result<std::string>)> done);
  void ProbeCandidates(std::vector<in_addr> candidates, size_t next, bool any,
                       std::function<void(Result<std::string>)> done);
  // The record of a process that ended goes, with its address if held here.
  // `rec`: that very record, found even if it stepped aside for a new
  // process given the same PID (a remnant's, StartRun).
  void EndRecord(pid_t pid, const HomeProcess* rec = nullptr);
  std::vector<std::string> Candidates(const std::string& on, bool lock, std::string* error) const;
  // Follows a process running at home with its pidfd: the record goes when it ends.
  void Watch(pid_t pid);

  // The nodes a move of `p` to `to` (a node, "home" or "best") may go to,
  // best first; only "best" gives more than one.
  Result<std::vector<std::string>> ChooseTargets(const HomeProcess& p, const std::string& to) const;
  // One try of a move to `to` (its `targets`: ChooseTargets), and `retries`
  // more if it is refused as busy.
  void MoveOnce(pid_t pid, const std::string& to, std::vector<std::string> targets, const pb::Credentials& requester,
                BalanceTag tag, int retries, MoveDone done);
  void MoveToFirst(pid_t pid, std::vector<std::string> targets, const pb::Credentials& requester, BalanceTag tag,
                   MoveDone done);
  void MoveTo(pid_t pid, const std::string& target, const pb::Credentials& requester, BalanceTag tag, MoveDone done);
  void DepartHome(HomeProcess& p, const std::string& target, const std::string& address,
                  std::shared_ptr<LinkSession> adopt, MoveDone done);
  void ComeHome(HomeProcess& p, MoveDone done);
  // After coming home: the record follows a local process again.
  void CameHome(pid_t pid, const std::vector<int>& held_signals);

  NodeContext& node_;
  std::map<pid_t, HomeProcess> home_;  // by PID at home
  PendingPlacements placing_;          // spawns sent to guests, not yet answered
  // Addresses just chosen for jobs not placed yet, and when (SteadyMs).
  std::map<uint32_t, int64_t> addresses_chosen_;
  std::map<pid_t, std::shared_ptr<HomeDeparture>> departures_;    // processes leaving home, by PID
  std::map<std::string, std::shared_ptr<HomeArrival>> arrivals_;  // processes coming home, by GPID
  MoveCounters move_counters_;                                    // for /metrics: the moves of this home's processes
};

}  // namespace roam
