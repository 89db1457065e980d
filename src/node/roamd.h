// Roamd: one node's daemon. Owns the event loop and wires together the
// membership state machine (Swim), its UDP endpoint, the load sampler, the
// local control socket, and the node links (TCP) to other roamds. Cron-style
// ticks drive everything periodic: the protocol tick (every 100 ms) and the
// load sample (every second).
//
// Roles (each in its own file): roamd_home.cc, the home of processes started
// here (`roam run`, `roam ps`, `roam kill`); roamd_guest.cc, the guest of
// processes other homes run here, and the node-link requests;
// roamd_migrate.cc, moves (the home's `roam migrate`, the source's and the
// target's side, whose state lives in MigrationOut and MigrationIn);
// roamd_balance.cc, the balancer, which moves this home's processes by
// itself.
//
// Single-threaded: every member runs on io_; nothing here needs a lock.
// The one exception is the checkpoint engine, which runs on the
// EngineWorker's thread and reports back to io_.
#pragma once

#include <asio.hpp>
#include <memory>

#include <map>
#include <optional>
#include <random>

#include "cluster/cluster_key.h"
#include "cluster/swim.h"
#include "node/balancer.h"
#include "node/child_reaper.h"
#include "node/control_server.h"
#include "node/engine_worker.h"
#include "node/gossip_endpoint.h"
#include "node/guest_process.h"
#include "node/home_departure.h"
#include "node/home_process.h"
#include "node/job_address.h"
#include "node/load_sampler.h"
#include "node/migration_in.h"
#include "node/migration_out.h"
#include "node/move_counters.h"
#include "node/move_faults.h"
#include "node/page_codec.h"
#include "node/placement.h"
#include "node/link_pool.h"
#include "node/remote_run.h"
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

  // ---- home role (roamd_home.cc)
  void StartRun(const pb::RunRequest& req, const ControlServer::Peer& peer,
                asio::local::stream_protocol::socket socket);
  // Tries candidates in order until one guest accepts (or home is next).
  void PlaceRun(std::shared_ptr<ClientChannel> client, pb::SpawnRequest spawn, std::vector<std::string> candidates,
                bool explicit_target, bool lock);
  void RunHere(std::shared_ptr<ClientChannel> client, const pb::SpawnRequest& spawn, bool lock);
  void RunFailed(std::shared_ptr<ClientChannel> client, const std::string& message, int exit_code);
  // The address a job asked for (`asked`: "auto" or one of the pool), free
  // on the network (job_address.h).
  void ChooseJobAddress(const std::string& asked, std::function<void(Result<std::string>)> done);
  void ProbeCandidates(std::vector<in_addr> candidates, size_t next, bool any,
                       std::function<void(Result<std::string>)> done);
  // The record of a process that ended goes, with its address if held here.
  void EndHomeRecord(pid_t pid);
  std::vector<std::string> Candidates(const std::string& on, bool lock, std::string* error) const;
  void Ps(bool all, const pb::Credentials& requester, std::function<void(pb::PsReply)> done);
  pb::PsReply LocalPs(const pb::Credentials& requester);
  // Figures of the home processes running here, every load sample.
  void SampleHomeProcesses();
  void Kill(const std::string& gpid, int signo, const pb::Credentials& requester,
            std::function<void(const std::string& error)> done);
  std::string KillHere(pid_t pid, int signo, const pb::Credentials& requester);
  pb::Credentials CredentialsOf(const ControlServer::Peer& peer) const;
  std::string AddressOf(const std::string& node) const;

  // ---- guest role and node links (roamd_guest.cc)
  void OnLink(std::shared_ptr<LinkSession> link, const std::string& peer);
  void OnLinkRequest(std::shared_ptr<LinkSession> link, const std::string& peer, const pb::LinkRequest& req);
  void StartGuest(std::shared_ptr<LinkSession> link, const std::string& peer, const pb::SpawnRequest& req);
  // Registers a guest (spawned, or moved in), starts it, and lets it move.
  void AdoptGuest(std::shared_ptr<GuestProcess> guest);
  // One request to another node's roamd and its reply.
  void AskNode(const std::string& node, pb::LinkRequest req,
               std::function<void(Result<pb::LinkReply>)> done,
               std::chrono::seconds timeout = std::chrono::seconds(5));

  // ---- moves (roamd_migrate.cc)
  using MoveDone = std::function<void(Result<pb::MigrationFigures>)>;
  void Migrate(const std::string& gpid, const std::string& to, const pb::Credentials& requester, MoveDone done);
  void MigrateHere(pid_t pid, const std::string& to, const pb::Credentials& requester, MoveDone done);
  // How far a move of `gpid` has come, asked of its home (root or owner).
  using ProgressDone = std::function<void(Result<pb::MoveProgress>)>;
  void MoveProgressOf(const std::string& gpid, const pb::Credentials& requester, ProgressDone done);
  // The nodes a move of `p` to `to` (a node, "home" or "best") may go to,
  // best first; only "best" gives more than one.
  Result<std::vector<std::string>> ChooseTargets(const HomeProcess& p, const std::string& to) const;
  void MoveToFirst(pid_t pid, std::vector<std::string> targets, const pb::Credentials& requester, MoveDone done);
  void MoveTo(pid_t pid, const std::string& target, const pb::Credentials& requester, MoveDone done);
  void StartAdopt(std::shared_ptr<LinkSession> link, const std::string& peer, const pb::SpawnRequest& req,
                  uint64_t rss_bytes, double demand, double balance_limit, int attempt = 0);
  void StartMoveIn(std::shared_ptr<LinkSession> link, const std::string& peer, const pb::MoveIn& req);
  void StartMoveOut(std::shared_ptr<GuestProcess> guest, const pb::MoveOut& order);
  void DepartHome(HomeProcess& p, const std::string& target, const std::string& address,
                  std::shared_ptr<LinkSession> adopt, MoveDone done);
  void ComeHome(HomeProcess& p, MoveDone done);
  // After coming home: the record follows a local process again.
  void CameHome(pid_t pid, const std::vector<int>& held_signals);
  // Follows a process running at home with its pidfd: the record goes when it ends.
  void WatchHomeProcess(pid_t pid);
  void Lock(const std::string& gpid, bool lock, const pb::Credentials& requester,
            std::function<void(const std::string& error)> done);
  using NodeAdminDone = std::function<void(Result<pb::NodeAdminReply>)>;
  void NodeAdmin(const pb::NodeAdminRequest& req, const pb::Credentials& requester, NodeAdminDone done);
  void MoveAll(const std::vector<std::string>& gpids, const std::string& to, const pb::Credentials& requester,
               NodeAdminDone done);
  // ---- the balancer (roamd_balance.cc)
  void ScheduleBalance();
  void Balance();
  std::vector<BalanceNode> BalanceView();
  void StartBalancedMove(BalanceMove m);
  // At the target of a balancer's move (limit > 0): does it still pay here?
  Status AdmitBalancedMove(const std::string& gpid, double demand, double limit, uint64_t rss_bytes);
  void SetBalance(bool on);
  // Memory ushering: short of memory, the largest process here moves away.
  void UsherMemory();
  void UsherOne(const std::string& gpid, uint64_t rss);

  void TickSwim();
  void SampleLoad();
  void PublishLoad();
  int64_t Now() const;

  RoamdConfig cfg_;
  asio::io_context io_;
  asio::steady_timer swim_timer_, load_timer_, balance_timer_;
  asio::signal_set signals_;
  ChildReaper reaper_;  // waits for roamd's children, by PID (guests register theirs)
  std::unique_ptr<GossipEndpoint> gossip_;
  std::unique_ptr<Swim> swim_;
  std::unique_ptr<ControlServer> control_;
  LinkIdentity link_id_;
  std::unique_ptr<LinkPool> links_;  // one connection per peer, many sessions
  JobAddresses addresses_;  // the job addresses on this node now
  // Addresses just chosen for jobs not placed yet, and when (SteadyMs).
  std::map<uint32_t, int64_t> addresses_chosen_;
  std::map<pid_t, HomeProcess> home_;                        // by PID at home
  PendingPlacements placing_;  // spawns sent to guests, not yet answered
  std::map<pid_t, std::shared_ptr<GuestProcess>> guests_;  // by PID here
  std::map<pid_t, std::shared_ptr<MigrationOut>> outgoing_;     // moves out, by PID here
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
  std::map<pid_t, std::shared_ptr<HomeDeparture>> departures_;    // processes leaving home, by PID
  std::map<std::string, std::shared_ptr<HomeArrival>> arrivals_;  // processes coming home, by GPID
  std::unique_ptr<EngineWorker> engine_;
  MoveFaults faults_;
  CodecChooser codec_;  // roamd.conf compress: each move starts from a copy
  bool draining_ = false;  // roam node drain: blocked, guests being moved away
  std::string roam_path_;  // the `roam` beside this roamd: what a process leaving home execs
  std::string run_dir_;  // the control socket's directory: move images, the fault file
  LoadSampler sampler_;
  uint32_t calibrated_speed_ = 0;
  pb::LoadVector last_load_;
  // The balancer's state: on or off here, its moves in flight (by GPID)
  // and just made, what it learnt of moves' costs; as a target, the moves
  // it admitted lately; and its counters (published in the load vector).
  bool balance_on_ = true;
  std::mt19937 rng_{std::random_device{}()};
  std::map<std::string, BalanceMove> balancing_;
  std::map<pid_t, std::pair<double, double>> balance_tags_;  // by PID: demand and limit for the adopt request
  // Moves made, until a load vector sampled a period after them shows them;
  // moves admitted here, until the process has surely arrived and been sampled.
  RecentMoves balance_sent_{1200};
  RecentMoves balance_arrived_{2500};
  MoveCostModel move_costs_;
  uint32_t balance_moves_ = 0, balanced_in_ = 0;
  // For /metrics: the moves of this home's processes, and membership
  // events by the state entered.
  MoveCounters move_counters_;
  std::optional<ClusterKey> key_;
  std::string dashboard_url_;
  std::map<std::string, uint64_t> member_events_;
  bool usher_on_ = true;  // roam node usher on|off
  MemoryTrend mem_trend_;
  std::map<std::string, uint64_t> ushering_;  // by GPID: its memory, moving away for want of memory
  uint32_t ushered_ = 0;
  int64_t last_sample_ms_ = 0;
};

}  // namespace roam
