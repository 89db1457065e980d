#include "node/roamd.h"

#include <ifaddrs.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <chrono>

#include "cluster/cluster_key.h"
#include "wire/reply.h"

namespace roam {

namespace {

constexpr auto kSwimTick = std::chrono::milliseconds(100);
constexpr auto kLoadPeriod = std::chrono::seconds(1);

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
    : cfg_(std::move(config)), swim_timer_(io_), load_timer_(io_), balance_timer_(io_), signals_(io_, SIGINT, SIGTERM), reaper_(io_) {}

Roamd::~Roamd() = default;

// Monotonic milliseconds whose origin is the wall clock's (as it was when
// roamd started): timeouts never jump with the wall clock, and nodes whose
// clocks agree (NTP; one host in `roam cluster`) count protocol periods
// alike, which the shared probe order (src/cluster/swim.h) needs.
int64_t Roamd::Now() const {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  static const int64_t offset =
      duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count() -
      duration_cast<milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
  return duration_cast<milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count() + offset;
}

Status Roamd::Init() {
  balance_on_ = cfg_.balance;
  if (cfg_.name.empty()) {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    cfg_.name = host;
  }
  std::optional<ClusterKey> key;
  if (cfg_.insecure) {
    if (cfg_.bind.rfind("127.", 0) != 0) {
      return Status::Error("--insecure is only allowed on a loopback address (bind = 127.x.x.x)");
    }
  } else {
    Result<ClusterKey> k = ClusterKey::Load(cfg_.key_file);
    if (!k.ok()) return Status::Error(k.status().message() + " (roamd needs the cluster key; see roamd.conf)");
    key = *k;
  }
  key_ = key;
  std::string advertise = cfg_.bind == "0.0.0.0" ? FirstIpv4() : cfg_.bind;
  std::string address = advertise + ":" + std::to_string(cfg_.port);

  gossip_ = std::make_unique<GossipEndpoint>(io_, Envelope(cfg_.cluster, cfg_.name, key,
                                                          static_cast<uint64_t>(WallMicros())));
  if (Status st = gossip_->Open(cfg_.bind, cfg_.port, cfg_.multicast); !st.ok()) return st;
  link_id_ = LinkIdentity{cfg_.cluster, cfg_.name, key, address};
  links_ = std::make_unique<LinkPool>(
      io_, link_id_, [this](std::shared_ptr<LinkSession> s, const std::string& peer) { OnLink(std::move(s), peer); });
  if (Status st = links_->Listen(cfg_.bind, cfg_.port); !st.ok()) return st;
  control_ = std::make_unique<ControlServer>(
      io_,
      [this](const pb::ControlRequest& r, const ControlServer::Peer& p, ControlServer::Reply reply) {
        Handle(r, p, std::move(reply));
      },
      [this](const pb::RunRequest& r, const ControlServer::Peer& p, asio::local::stream_protocol::socket s) {
        StartRun(r, p, std::move(s));
      });
  if (Status st = control_->Listen(cfg_.control_socket); !st.ok()) return st;
  run_dir_ = cfg_.control_socket.substr(0, cfg_.control_socket.rfind('/') == std::string::npos
                                               ? 0
                                               : cfg_.control_socket.rfind('/'));
  if (run_dir_.empty()) run_dir_ = ".";
  faults_ = MoveFaults::FromEnvironment(run_dir_);
  codec_ = *CodecChooser::FromSetting(cfg_.compress);  // checked by ParseRoamdConfig
  {
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    std::string self = n > 0 ? std::string(exe, static_cast<size_t>(n)) : "/usr/bin/roamd";
    roam_path_ = self.substr(0, self.rfind('/') + 1) + "roam";
  }
  engine_ = std::make_unique<EngineWorker>(io_);
  addresses_.set_node(cfg_.name);
  for (const std::string& cg : RemoveStaleJobCgroups(cfg_.name)) {
    spdlog::info("removed {}, the cgroup of a job that ran here before this roamd", cg);
  }
  // No job runs here yet: a job address on an interface was left by a
  // roamd that did not stop cleanly.
  if (Result<AddressPool> pool = ParseAddressPool(cfg_.job_addresses); pool.ok()) {
    for (const std::string& a : RemoveStaleJobAddresses(*pool)) {
      spdlog::warn("removed job address {}, left on this node by a roamd that stopped without taking it down", a);
    }
  }
  // A guest's stdin pipe closed by the process must not kill roamd.
  ::signal(SIGPIPE, SIG_IGN);

  // A restarted node must come back with a higher incarnation: the clock in ms.
  const uint64_t incarnation = static_cast<uint64_t>(WallMicros() / 1000);
  swim_ = std::make_unique<Swim>(cfg_.swim, cfg_.name, address, incarnation, gossip_.get(),
                                 static_cast<uint64_t>(WallMicros()) ^ static_cast<uint64_t>(getpid()));
  swim_->on_state_change = [this](MemberState old, const Member& m) { OnMemberChange(old, m); };
  calibrated_speed_ = LoadSampler::CalibrateSpeed();
  sampler_.set_speed(calibrated_speed_);
  // Processes roamd starts and that lose their parent are reaped by roamd.
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  spdlog::info("roamd {} in cluster {} at {} (speed {}, {})", cfg_.name, cfg_.cluster, address,
               calibrated_speed_, key ? "authenticated" : "INSECURE");
  return Status::Ok();
}

void Roamd::Run() {
  gossip_->Start([this](const std::string& from, const pb::SwimMessage& msg) { swim_->Receive(from, msg, Now()); });
  last_sample_ms_ = Now();
  SampleLoad();
  std::vector<std::string> peers;  // the same list serves every node: skip ourselves
  for (const auto& p : cfg_.peers) {
    if (p != swim_->members().at(swim_->name()).address) peers.push_back(p);
  }
  swim_->Start(Now(), cfg_.multicast != "off", peers);
  TickSwim();
  load_timer_.expires_after(kLoadPeriod);
  load_timer_.async_wait([this](asio::error_code ec) {
    if (!ec) SampleLoad();
  });
  reaper_.Start();
  ScheduleBalance();
  signals_.async_wait([this](asio::error_code ec, int sig) {
    if (ec) return;
    spdlog::info("signal {}: leaving the cluster", sig);
    for (auto& [pid, g] : guests_) g->KillAll();
    swim_->Leave(Now());
    io_.stop();
  });
  io_.run();
}

void Roamd::TickSwim() {
  swim_->Tick(Now());
  swim_timer_.expires_after(kSwimTick);
  swim_timer_.async_wait([this](asio::error_code ec) {
    if (!ec) TickSwim();
  });
}

void Roamd::SampleLoad() {
  int64_t now = Now();
  last_load_ = sampler_.Sample(now - last_sample_ms_);
  last_sample_ms_ = now;
  addresses_.Sweep();  // job cgroups let go while their processes ended
  SampleHomeProcesses();
  PublishLoad();
  UsherMemory();
  load_timer_.expires_after(kLoadPeriod);
  load_timer_.async_wait([this](asio::error_code ec) {
    if (!ec) SampleLoad();
  });
}

void Roamd::PublishLoad() {
  last_load_.set_speed(sampler_.speed());
  last_load_.set_accepts_guests(sampler_.accepts_guests());
  last_load_.set_draining(draining_);
  last_load_.set_home_procs(static_cast<uint32_t>(home_.size()));
  last_load_.set_guest_procs(static_cast<uint32_t>(guests_.size()));
  last_load_.set_balance_off(!balance_on_);
  last_load_.set_balance_moves(balance_moves_);
  last_load_.set_balanced_in(balanced_in_);
  last_load_.set_ushered(ushered_);
  last_load_.set_usher_off(!usher_on_);
  swim_->SetSelfLoad(last_load_, Now());
}

// ---- control requests ------------------------------------------------------------

pb::NodesReply Roamd::Nodes() const {
  pb::NodesReply reply;
  const int64_t now = Now();
  reply.set_self(swim_->name());
  reply.set_cluster(cfg_.cluster);
  for (const auto& [name, m] : swim_->members()) {
    pb::NodeView* v = reply.add_nodes();
    v->set_name(name);
    v->set_address(m.address);
    v->set_state(m.state);
    v->set_incarnation(m.incarnation);
    v->set_is_self(name == swim_->name());
    v->set_state_age_ms(static_cast<uint64_t>(std::max<int64_t>(0, now - m.state_since_ms)));
    if (m.load) {
      *v->mutable_load() = m.load->vector;
      v->mutable_load()->set_age_ms(m.load->AgeAt(now));
    }
  }
  *reply.mutable_counters() = gossip_->counters();
  reply.mutable_counters()->set_links(links_->connections());
  reply.mutable_counters()->set_link_sessions(links_->sessions());
  reply.mutable_counters()->set_placing(static_cast<uint64_t>(placing_.total()));
  move_counters_.CopyTo(reply.mutable_counters());
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
  if (m.name == swim_->name()) return;
  // Processes of ours running there are lost; processes of theirs running
  // here have lost their home and must not run on unseen.
  std::vector<std::shared_ptr<RemoteRun>> lost;
  for (auto& [pid, p] : home_) {
    if (p.remote && p.where == m.name) lost.push_back(p.remote);
  }
  for (auto& r : lost) r->NodeLost(std::string("it was declared ") + MemberStateName(m.state));
  for (auto& [pid, g] : guests_) {
    if (g->home() == m.name) {
      spdlog::warn("{}: its home {} is {}; killing it", g->gpid(), m.name, MemberStateName(m.state));
      g->KillAll();
    }
  }
  // Its connection may be half-open (a node cut off says nothing): the
  // next session dials afresh.
  links_->Drop(m.address, std::string("it was declared ") + MemberStateName(m.state));
}

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
      sampler_.set_speed(req.set_speed().speed() == 0 ? calibrated_speed_ : req.set_speed().speed());
      spdlog::info("speed set to {}", sampler_.speed());
      PublishLoad();
      break;
    case pb::ControlRequest::kPs:
      Ps(req.ps().all(), CredentialsOf(peer), [reply_fn](pb::PsReply ps) {
        pb::ControlReply r;
        *r.mutable_ps() = std::move(ps);
        reply_fn(r);
      });
      return;
    case pb::ControlRequest::kMigrate:
      return Migrate(req.migrate().gpid(), req.migrate().to(), CredentialsOf(peer),
                     ReplyWith<pb::ControlReply, pb::MigrationFigures>(
                         send, [](pb::ControlReply& m, const pb::MigrationFigures& v) { *m.mutable_migration() = v; }));
    case pb::ControlRequest::kMoveProgress:
      return MoveProgressOf(req.move_progress().gpid(), CredentialsOf(peer),
                            ReplyWith<pb::ControlReply, pb::MoveProgress>(
                                send, [](pb::ControlReply& m, const pb::MoveProgress& v) { *m.mutable_move_progress() = v; }));
    case pb::ControlRequest::kLock:
      return Lock(req.lock().gpid(), req.lock().lock(), CredentialsOf(peer), ReplyError<pb::ControlReply>(send));
    case pb::ControlRequest::kNodeAdmin:
      return NodeAdmin(req.node_admin(), CredentialsOf(peer),
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
      return Kill(req.kill().gpid(), req.kill().signo(), CredentialsOf(peer), ReplyError<pb::ControlReply>(send));
    default:
      reply.set_error("unknown request (is roam newer than roamd?)");
  }
  reply_fn(reply);
}

}  // namespace roam
