#include "node/roamd.h"

#include <ifaddrs.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>

#include "cluster/cluster_key.h"
#include "wire/reply.h"

namespace roam {

namespace {

constexpr auto kSwimTick = std::chrono::milliseconds(100);
constexpr auto kLoadPeriod = std::chrono::seconds(1);
// roamd's own nice: ahead of the jobs, so that a node busy with them still
// answers membership probes in time. At nice 0, 200 CPU-bound `roam run`s
// on a 4-node cluster of 2 cores starved n1's roamd until n4 declared n1
// dead and killed the 50 guests n1 had there. What roamd starts runs at
// its caller's nice (RunSpec.nice) or at its recorded one (a restore).
constexpr int kRoamdNice = -10;

int64_t WallMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

std::string FirstIpv4() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return "127.0.0.1";
  std::string out = "127.0.0.1";
  for (ifaddrs* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
    char buf[INET_ADDRSTRLEN];
    auto* sin = reinterpret_cast<sockaddr_in*>(i->ifa_addr);
    inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf);
    if (std::string(buf).rfind("127.", 0) != 0) {
      out = buf;
      break;
    }
  }
  freeifaddrs(list);
  return out;
}


Roamd::Roamd(RoamdConfig config)
    : node_(std::move(config)),
      swim_timer_(node_.io),
      load_timer_(node_.io),
      signals_(node_.io, SIGINT, SIGTERM),
      home_(std::make_unique<HomeRole>(node_)),
      guests_(std::make_unique<GuestRole>(node_, [this](std::shared_ptr<GuestProcess> g, const pb::MoveOut& order) {
        migrator_->StartMoveOut(std::move(g), order);
      })),
      migrator_(std::make_unique<Migrator>(
          node_, *guests_,
          Migrator::Admission{
              [this](const std::string& gpid, double demand, double limit, uint64_t rss) {
                return balancer_->Admit(gpid, demand, limit, rss);
              },
              [this] { return balancer_->MemoryFloor(); }})),
      balancer_(std::make_unique<BalancerRole>(node_, *home_, *guests_, *migrator_)) {
  node_.publish_load = [this] { PublishLoad(); };
}

Roamd::~Roamd() {
  // The engine's thread stops first: its work may point into the roles' state.
  node_.engine.reset();
}

Status Roamd::Init() {
  RoamdConfig& cfg = node_.cfg;
  // Per thread on Linux: before any thread is made (the engine's inherits it).
  if (setpriority(PRIO_PROCESS, 0, kRoamdNice) != 0) {
    spdlog::warn("cannot run at nice {} ({}): a node busy with its jobs may miss membership probes", kRoamdNice,
                 strerror(errno));
  }
  if (cfg.name.empty()) {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    cfg.name = host;
  }
  std::optional<ClusterKey> key;
  if (cfg.insecure) {
    if (cfg.bind.rfind("127.", 0) != 0) {
      return Status::Error("--insecure is only allowed on a loopback address (bind = 127.x.x.x)");
    }
  } else {
    Result<ClusterKey> k = ClusterKey::Load(cfg.key_file);
    if (!k.ok()) return Status::Error(k.status().message() + " (roamd needs the cluster key; see roamd.conf)");
    key = *k;
  }
  key_ = key;
  std::string advertise = cfg.bind == "0.0.0.0" ? FirstIpv4() : cfg.bind;
  std::string address = advertise + ":" + std::to_string(cfg.port);

  gossip_ = std::make_unique<GossipEndpoint>(node_.io, Envelope(cfg.cluster, cfg.name, key,
                                                          static_cast<uint64_t>(WallMicros())));
  if (Status st = gossip_->Open(cfg.bind, cfg.port, cfg.multicast); !st.ok()) return st;
  link_id_ = LinkIdentity{cfg.cluster, cfg.name, key, address};
  node_.links = std::make_unique<LinkPool>(
      node_.io, link_id_, [this](std::shared_ptr<LinkSession> s, const std::string& peer) { OnLink(std::move(s), peer); });
  if (Status st = node_.links->Listen(cfg.bind, cfg.port); !st.ok()) return st;
  control_ = std::make_unique<ControlServer>(
      node_.io,
      [this](const pb::ControlRequest& r, const ControlServer::Peer& p, ControlServer::Reply reply) {
        Handle(r, p, std::move(reply));
      },
      [this](const pb::RunRequest& r, const ControlServer::Peer& p, asio::local::stream_protocol::socket s) {
        home_->StartRun(r, p, std::move(s));
      });
  if (Status st = control_->Listen(cfg.control_socket); !st.ok()) return st;
  const size_t slash = cfg.control_socket.rfind('/');
  node_.run_dir = cfg.control_socket.substr(0, slash == std::string::npos ? 0 : slash);
  if (node_.run_dir.empty()) node_.run_dir = ".";
  node_.faults = MoveFaults::FromEnvironment(node_.run_dir);
  node_.codec = *CodecChooser::FromSetting(cfg.compress);  // checked by ParseRoamdConfig
  {
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    std::string self = n > 0 ? std::string(exe, static_cast<size_t>(n)) : "/usr/bin/roamd";
    node_.roam_path = self.substr(0, self.rfind('/') + 1) + "roam";
  }
  node_.engine = std::make_unique<EngineWorker>(node_.io);
  node_.addresses.set_node(cfg.name);
  for (const std::string& cg : RemoveStaleJobCgroups(cfg.name)) {
    spdlog::info("removed {}, the cgroup of a job that ran here before this roamd", cg);
  }
  // No job runs here yet: a job address on an interface was left by a
  // roamd that did not stop cleanly.
  if (Result<AddressPool> pool = ParseAddressPool(cfg.job_addresses); pool.ok()) {
    for (const std::string& a : RemoveStaleJobAddresses(*pool)) {
      spdlog::warn("removed job address {}, left on this node by a roamd that stopped without taking it down", a);
    }
  }
  // A guest's stdin pipe closed by the process must not kill roamd.
  ::signal(SIGPIPE, SIG_IGN);

  // A restarted node must come back with a higher incarnation: the clock in ms.
  const uint64_t incarnation = static_cast<uint64_t>(WallMicros() / 1000);
  node_.swim = std::make_unique<Swim>(cfg.swim, cfg.name, address, incarnation, gossip_.get(),
                                 static_cast<uint64_t>(WallMicros()) ^ static_cast<uint64_t>(getpid()));
  node_.swim->on_state_change = [this](MemberState old, const Member& m) { OnMemberChange(old, m); };
  calibrated_speed_ = LoadSampler::CalibrateSpeed();
  node_.sampler.set_speed(calibrated_speed_);
  // Processes roamd starts and that lose their parent are reaped by roamd.
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  spdlog::info("roamd {} in cluster {} at {} (speed {}, {})", cfg.name, cfg.cluster, address,
               calibrated_speed_, key ? "authenticated" : "INSECURE");
  return Status::Ok();
}

void Roamd::Run() {
  gossip_->Start([this](const std::string& from, const pb::SwimMessage& msg) { node_.swim->Receive(from, msg, NodeContext::Now()); });
  node_.last_sample_ms = NodeContext::Now();
  SampleLoad();
  std::vector<std::string> peers;  // the same list serves every node: skip ourselves
  for (const auto& p : node_.cfg.peers) {
    if (p != node_.swim->members().at(node_.swim->name()).address) peers.push_back(p);
  }
  node_.swim->Start(NodeContext::Now(), node_.cfg.multicast != "off", peers);
  TickSwim();
  load_timer_.expires_after(kLoadPeriod);
  load_timer_.async_wait([this](asio::error_code ec) {
    if (!ec) SampleLoad();
  });
  node_.reaper.Start();
  balancer_->Start();
  signals_.async_wait([this](asio::error_code ec, int sig) {
    if (ec) return;
    spdlog::info("signal {}: leaving the cluster", sig);
    guests_->KillAll();
    node_.swim->Leave(NodeContext::Now());
    node_.io.stop();
  });
  node_.io.run();
}

void Roamd::TickSwim() {
  const int64_t now = NodeContext::Now();
  // A process arrived or left (started, ended, moved): the others hear it
  // within a tick, not at the next second's gossip, when `roam nodes`
  // showed a moved process on both nodes.
  if (home_ && guests_ &&
      (guests_->size() != node_.last_load.guest_procs() || home_->processes().size() != node_.last_load.home_procs())) {
    PublishLoad();
    node_.swim->GossipSoon(now);
  }
  node_.swim->Tick(now);
  swim_timer_.expires_after(kSwimTick);
  swim_timer_.async_wait([this](asio::error_code ec) {
    if (!ec) TickSwim();
  });
}

void Roamd::SampleLoad() {
  int64_t now = NodeContext::Now();
  node_.last_load = node_.sampler.Sample(now - node_.last_sample_ms);
  node_.last_sample_ms = now;
  node_.addresses.Sweep();  // job cgroups let go while their processes ended
  home_->SampleProcesses();
  PublishLoad();
  balancer_->UsherMemory();
  load_timer_.expires_after(kLoadPeriod);
  load_timer_.async_wait([this](asio::error_code ec) {
    if (!ec) SampleLoad();
  });
}

void Roamd::PublishLoad() {
  pb::LoadVector& v = node_.last_load;
  v.set_speed(node_.sampler.speed());
  v.set_accepts_guests(node_.sampler.accepts_guests());
  v.set_draining(node_.draining);
  v.set_home_procs(static_cast<uint32_t>(home_->processes().size()));
  v.set_guest_procs(static_cast<uint32_t>(guests_->size()));
  balancer_->FillLoad(&v);
  node_.swim->SetSelfLoad(v, NodeContext::Now());
}

// ---- the node's view ---------------------------------------------------------------

pb::NodesReply Roamd::Nodes() const {
  pb::NodesReply reply;
  const int64_t now = NodeContext::Now();
  reply.set_self(node_.swim->name());
  reply.set_cluster(node_.cfg.cluster);
  for (const auto& [name, m] : node_.swim->members()) {
    pb::NodeView* v = reply.add_nodes();
    v->set_name(name);
    v->set_address(m.address);
    v->set_state(m.state);
    v->set_incarnation(m.incarnation);
    v->set_is_self(name == node_.swim->name());
    v->set_state_age_ms(static_cast<uint64_t>(std::max<int64_t>(0, now - m.state_since_ms)));
    if (m.load) {
      *v->mutable_load() = m.load->vector;
      v->mutable_load()->set_age_ms(m.load->AgeAt(now));
    }
  }
  *reply.mutable_counters() = gossip_->counters();
  reply.mutable_counters()->set_links(node_.links->connections());
  reply.mutable_counters()->set_link_sessions(node_.links->sessions());
  reply.mutable_counters()->set_placing(static_cast<uint64_t>(home_->placing()));
  home_->move_counters().CopyTo(reply.mutable_counters());
  for (const auto& [state, n] : member_events_) (*reply.mutable_counters()->mutable_member_events())[state] = n;
  return reply;
}

void Roamd::OnMemberChange(MemberState old, const Member& m) {
  ++member_events_[old == pb::MEMBER_STATE_UNSPECIFIED ? "joined" : MemberStateName(m.state)];
  if (old == pb::MEMBER_STATE_UNSPECIFIED) {
    spdlog::info("{} ({}) joined as {}", m.name, m.address, MemberStateName(m.state));
  } else {
    spdlog::info("{} is {} (was {}, incarnation {})", m.name, MemberStateName(m.state), MemberStateName(old),
                 m.incarnation);
  }
  if (m.state != pb::DEAD && m.state != pb::LEFT) return;
  if (m.name == node_.swim->name()) return;
  // Processes of ours running there are lost; processes of theirs running
  // here have lost their home and must not run on unseen.
  const std::string why = std::string("it was declared ") + MemberStateName(m.state);
  home_->NodeLost(m.name, why);
  guests_->HomeLost(m.name, MemberStateName(m.state));
  // Its connection may be half-open (a node cut off says nothing): the
  // next session dials afresh.
  node_.links->Drop(m.address, why);
}

// ---- node links ------------------------------------------------------------------

void Roamd::OnLink(std::shared_ptr<LinkSession> link, const std::string& peer) {
  // The first frame is the request; what follows depends on it.
  link->set_handlers(
      [this, link, peer](pb::LinkFrame& f) {
        if (!f.has_request()) return link->Close("expected a request", false);
        link->set_handlers(nullptr, nullptr);
        OnLinkRequest(link, peer, f.request());
      },
      nullptr);
}

void Roamd::OnLinkRequest(std::shared_ptr<LinkSession> link, const std::string& peer, const pb::LinkRequest& req) {
  pb::LinkReply reply;
  std::function<void(pb::LinkReply)> answer = [link](pb::LinkReply r) {
    SendReply(link, std::move(r));
    link->Close("answered");
  };
  switch (req.op_case()) {
    case pb::LinkRequest::kSpawn:
      return guests_->Start(link, peer, req.spawn());
    case pb::LinkRequest::kPs:
      *reply.mutable_ps() = home_->LocalPs(req.requester());
      break;
    case pb::LinkRequest::kAdopt:
      return migrator_->StartAdopt(link, peer, req.adopt(), req.move_rss_bytes(), req.move_demand(),
                                   req.balance_limit());
    case pb::LinkRequest::kMoveIn:
      if (home_->AcceptArrival(link, peer, req.move_in())) return;
      return migrator_->StartMoveIn(link, peer, req.move_in());
    case pb::LinkRequest::kMigrate:  // to the home; the link stays open until the move is done
      return home_->Migrate(
          req.migrate().gpid(), req.migrate().to(), req.requester(),
          ReplyWith<pb::LinkReply, pb::MigrationFigures>(
              answer, [](pb::LinkReply& m, const pb::MigrationFigures& v) { *m.mutable_migration() = v; }));
    case pb::LinkRequest::kMoveProgress:
      return home_->MoveProgressOf(
          req.move_progress().gpid(), req.requester(),
          ReplyWith<pb::LinkReply, pb::MoveProgress>(
              answer, [](pb::LinkReply& m, const pb::MoveProgress& v) { *m.mutable_move_progress() = v; }));
    case pb::LinkRequest::kLock:
      return home_->Lock(req.lock().gpid(), req.lock().lock(), req.requester(), ReplyError<pb::LinkReply>(answer));
    case pb::LinkRequest::kNodeAdmin:
      return NodeAdmin(req.node_admin(), req.requester(),
                       ReplyWith<pb::LinkReply, pb::NodeAdminReply>(
                           answer, [](pb::LinkReply& m, const pb::NodeAdminReply& v) { *m.mutable_node_admin() = v; }));
    case pb::LinkRequest::kKill: {
      const std::string& gpid = req.kill().gpid();
      const std::string prefix = node_.name() + ":";
      if (gpid.rfind(prefix, 0) != 0) {
        reply.set_error(gpid + " is not a process of " + node_.name());
        break;
      }
      pid_t pid = static_cast<pid_t>(std::strtol(gpid.c_str() + prefix.size(), nullptr, 10));
      reply.set_error(home_->KillHere(pid, req.kill().signo(), req.requester()));
      break;
    }
    default:
      reply.set_error("unknown link request (is " + peer + " newer than this roamd?)");
  }
  SendReply(link, std::move(reply));
  link->Close("answered");
}

// ---- control requests ------------------------------------------------------------

void Roamd::Handle(const pb::ControlRequest& req, const ControlServer::Peer& peer, ControlServer::Reply reply_fn) {
  pb::ControlReply reply;
  const bool root = peer.uid == 0;
  std::function<void(pb::ControlReply)> send = [reply_fn](pb::ControlReply r) { reply_fn(r); };
  switch (req.op_case()) {
    case pb::ControlRequest::kNodes:
      *reply.mutable_nodes() = Nodes();
      break;
    case pb::ControlRequest::kSetSpeed:
      if (!root) {
        reply.set_error("setting the speed needs root");
        break;
      }
      if (req.set_speed().speed() > 1000000) {
        reply.set_error("speed must be between 1 and 1000000 (0 restores the calibrated speed)");
        break;
      }
      node_.sampler.set_speed(req.set_speed().speed() == 0 ? calibrated_speed_ : req.set_speed().speed());
      spdlog::info("speed set to {}", node_.sampler.speed());
      PublishLoad();
      break;
    case pb::ControlRequest::kPs:
      home_->Ps(req.ps().all(), CredentialsOf(peer), [reply_fn](pb::PsReply ps) {
        pb::ControlReply r;
        *r.mutable_ps() = std::move(ps);
        reply_fn(r);
      });
      return;
    case pb::ControlRequest::kMigrate:
      return home_->Migrate(
          req.migrate().gpid(), req.migrate().to(), CredentialsOf(peer),
          ReplyWith<pb::ControlReply, pb::MigrationFigures>(
              send, [](pb::ControlReply& m, const pb::MigrationFigures& v) { *m.mutable_migration() = v; }));
    case pb::ControlRequest::kMoveProgress:
      return home_->MoveProgressOf(
          req.move_progress().gpid(), CredentialsOf(peer),
          ReplyWith<pb::ControlReply, pb::MoveProgress>(
              send, [](pb::ControlReply& m, const pb::MoveProgress& v) { *m.mutable_move_progress() = v; }));
    case pb::ControlRequest::kLock:
      return home_->Lock(req.lock().gpid(), req.lock().lock(), CredentialsOf(peer), ReplyError<pb::ControlReply>(send));
    case pb::ControlRequest::kNodeAdmin:
      return NodeAdmin(
          req.node_admin(), CredentialsOf(peer),
          ReplyWith<pb::ControlReply, pb::NodeAdminReply>(
              send, [](pb::ControlReply& m, const pb::NodeAdminReply& v) { *m.mutable_node_admin() = v; }));
    case pb::ControlRequest::kDashboard:
      if (!root) {
        reply.set_error("the dashboard's token is as good as the cluster key: roam web needs root");
      } else if (dashboard_url_.empty()) {
        reply.set_error("this node serves no dashboard (roamd.conf: http = ADDR:PORT)");
      } else {
        reply.set_dashboard_url(dashboard_url_);
      }
      break;
    case pb::ControlRequest::kKill:
      return home_->Kill(req.kill().gpid(), req.kill().signo(), CredentialsOf(peer),
                         ReplyError<pb::ControlReply>(send));
    default:
      reply.set_error("unknown request (is roam newer than roamd?)");
  }
  reply_fn(reply);
}

}  // namespace roam
