// HomeRole (home_role.h): `roam run`, `roam ps` and `roam kill` of this
// home's processes; their moves are in home_moves.cc.
#include "node/home_role.h"

#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>

#include "ckpt/checkpoint.h"
#include "common/file_util.h"
#include "common/proc_sample.h"
#include "node/iface_address.h"
#include "node/job_env.h"
#include "node/placement.h"

namespace roam {

namespace {

std::string JoinArgv(const pb::RunSpec& spec) {
  std::string out;
  for (const auto& a : spec.argv()) {
    if (!out.empty()) out += ' ';
    out += a;
  }
  return out;
}

// True once the process a pidfd refers to has ended (the kernel's answer
// now, not a reactor's earlier report).
bool PidfdReadable(int pidfd) {
  pollfd p{pidfd, POLLIN, 0};
  int n;
  do {
    n = ::poll(&p, 1, 0);
  } while (n < 0 && errno == EINTR);
  return n != 0;  // an error counts as ended: nothing left to watch
}

void RunFailed(std::shared_ptr<ClientChannel> client, const std::string& message, int exit_code) {
  pb::StreamFrame err;
  err.set_error(message);
  client->Send(err);
  pb::StreamFrame exit;
  exit.mutable_exit()->set_code(exit_code);
  client->Send(exit);
  client->Close("run refused");
}

}  // namespace

bool SplitGpid(const std::string& gpid, std::string* node, pid_t* pid) {
  size_t colon = gpid.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= gpid.size()) return false;
  const std::string num = gpid.substr(colon + 1);
  if (num.size() > 9 || !std::all_of(num.begin(), num.end(), ::isdigit)) return false;
  *node = gpid.substr(0, colon);
  *pid = static_cast<pid_t>(std::stol(num));
  return *pid > 0;
}

// ---- roam run --------------------------------------------------------------------------

std::vector<std::string> HomeRole::Candidates(const std::string& on, bool lock, std::string* error) const {
  const std::string& self = node_.name();
  if (lock || on == self) return {self};
  if (!on.empty()) {
    auto it = node_.swim->members().find(on);
    if (it == node_.swim->members().end()) {
      *error = "no node named " + on + " in cluster " + node_.cfg.cluster;
      return {};
    }
    const Member& m = it->second;
    if (m.state != pb::ALIVE) {
      *error = "node " + on + " is " + MemberStateName(m.state);
      return {};
    }
    // Whether it takes guests is its own answer, not what its last load
    // vector said: `roam node unblock n2 && roam run --on n2 ...` was
    // refused for up to a second, until the next vector arrived.
    return {on};
  }
  std::map<std::string, int> ours;
  for (const auto& [pid, p] : home_) ++ours[p.where];
  std::vector<PlacementNode> nodes;
  for (const auto& [name, m] : node_.swim->members()) {
    PlacementNode n;
    n.name = name;
    n.is_home = name == self;
    n.alive = m.state == pb::ALIVE;
    if (n.is_home) {
      n.has_load = true;
      n.load = node_.last_load;
    } else if (m.load) {
      n.has_load = true;
      n.load = m.load->vector;
    }
    n.ours_running = ours[name] + placing_.count(name);
    nodes.push_back(std::move(n));
  }
  return RankNodes(nodes);
}

void HomeRole::StartRun(const pb::RunRequest& req, const ControlServer::Peer& peer,
                        asio::local::stream_protocol::socket socket) {
  auto client = std::make_shared<ClientChannel>(std::move(socket));
  if (!req.take_over().empty()) {
    // The deputy of a process that is leaving home, or that failed to come
    // home: it must be that process.
    auto d = departures_.find(peer.pid);
    auto rec = home_.find(peer.pid);
    if (rec != home_.end() && rec->second.gpid == req.take_over() && rec->second.remote &&
        rec->second.remote->awaits_deputy() && (peer.uid == 0 || peer.uid == rec->second.creds.uid())) {
      std::shared_ptr<RemoteRun> remote = rec->second.remote;
      return remote->DeputyBack(client);
    }
    if (d == departures_.end() || rec == home_.end() || rec->second.gpid != req.take_over() ||
        (peer.uid != 0 && peer.uid != rec->second.creds.uid())) {
      return RunFailed(client, "no move of " + req.take_over() + " awaits pid " + std::to_string(peer.pid), 255);
    }
    std::shared_ptr<HomeDeparture> departure = d->second;  // it leaves the map once done
    return departure->DeputyArrived(client);
  }
  if (req.spec().argv().empty()) return RunFailed(client, "no command given", 255);
  if (auto it = home_.find(peer.pid); it != home_.end()) {
    // The PID of a process that exited, whose background children still
    // write elsewhere, was given out again: its record steps aside.
    if (!it->second.remote || !it->second.remote->remnant() || home_.count(-peer.pid))
      return RunFailed(client, "pid " + std::to_string(peer.pid) + " already runs a process", 255);
    auto moved = home_.extract(it);
    moved.key() = -peer.pid;
    home_.insert(std::move(moved));
  }
  pb::SpawnRequest spawn;
  spawn.set_gpid(node_.name() + ":" + std::to_string(peer.pid));
  spawn.set_home(node_.name());
  spawn.set_pid(static_cast<uint32_t>(peer.pid));
  *spawn.mutable_creds() = CredentialsOf(peer);
  *spawn.mutable_spec() = req.spec();
  AddJobTmpdir(node_.cfg.job_tmpdir, spawn.mutable_spec());
  auto place = [this, client, on = req.on(), lock = req.lock()](pb::SpawnRequest spawn) {
    std::string error;
    std::vector<std::string> candidates = Candidates(on, lock, &error);
    if (!error.empty()) return RunFailed(client, error, 255);
    PlaceRun(client, std::move(spawn), std::move(candidates), !on.empty(), lock);
  };
  if (spawn.spec().address().empty()) return place(std::move(spawn));
  const std::string asked = spawn.spec().address();
  ChooseJobAddress(asked, [this, client, spawn, place](Result<std::string> a) mutable {
    if (!a.ok()) return RunFailed(client, a.status().message(), 255);
    spawn.mutable_spec()->set_address(*a);
    spawn.mutable_spec()->add_env("ROAM_ADDRESS=" + *a);
    place(std::move(spawn));
  });
}

void HomeRole::ChooseJobAddress(const std::string& asked, std::function<void(Result<std::string>)> done) {
  Result<AddressPool> pool = ParseAddressPool(node_.cfg.job_addresses);
  if (!pool.ok() || pool->empty()) {
    return done(Status::Error(StatusCode::kRefused,
                              "this cluster gives jobs no addresses of their own (roamd.conf job_addresses)"));
  }
  // Taken: held here, asked by a job of this home, or chosen a moment ago
  // for one not placed yet.
  std::set<uint32_t> taken = node_.addresses.held_addresses();
  for (const auto& [pid, p] : home_) {
    if (Result<in_addr> a = ParseIpv4(p.spawn.spec().address()); a.ok()) taken.insert(a->s_addr);
  }
  const int64_t now = SteadyMs();
  for (auto it = addresses_chosen_.begin(); it != addresses_chosen_.end();) {
    if (now - it->second > 10000) {
      it = addresses_chosen_.erase(it);
    } else {
      taken.insert(it->first);
      ++it;
    }
  }
  if (asked == "auto") {
    std::vector<in_addr> c = PoolCandidates(*pool, taken, static_cast<uint64_t>(now) * 2654435761u + getpid());
    if (c.size() > 16) c.resize(16);
    if (c.empty())
      return done(
          Status::Error(StatusCode::kNoRoom, "every address of the pool " + node_.cfg.job_addresses + " is taken"));
    return ProbeCandidates(std::move(c), 0, true, std::move(done));
  }
  Result<in_addr> a = ParseIpv4(asked);
  if (!a.ok()) return done(a.status());
  if (!InPool(*pool, *a)) {
    return done(Status::Error(StatusCode::kInvalid, asked + " is not in the cluster's pool " + node_.cfg.job_addresses +
                                                        " (roamd.conf job_addresses)"));
  }
  if (taken.count(a->s_addr))
    return done(Status::Error(StatusCode::kBusy, "address " + asked + " is taken by another job"));
  ProbeCandidates({*a}, 0, false, std::move(done));
}

// Tries each candidate with an ARP probe; the first nobody answers for is
// the job's (`any`: else the next).
void HomeRole::ProbeCandidates(std::vector<in_addr> candidates, size_t next, bool any,
                               std::function<void(Result<std::string>)> done) {
  if (next == candidates.size()) {
    return done(
        Status::Error(StatusCode::kBusy, any ? "no free address found in the pool " + node_.cfg.job_addresses
                                             : "address " + Ipv4Text(candidates.back()) + " is in use on the network"));
  }
  const in_addr a = candidates[next];
  if (HasAddress(a)) return ProbeCandidates(std::move(candidates), next + 1, any, std::move(done));
  ProbeAddress(node_.io, a, std::chrono::milliseconds(150),
               [this, candidates, next, any, done, a](Result<bool> in_use) mutable {
                 if (!in_use.ok()) return done(in_use.status().Prefixed("probing " + Ipv4Text(a) + ": "));
                 if (*in_use) return ProbeCandidates(std::move(candidates), next + 1, any, std::move(done));
                 addresses_chosen_[a.s_addr] = SteadyMs();
                 done(Ipv4Text(a));
               });
}

void HomeRole::EndRecord(pid_t pid, const HomeProcess* rec) {
  auto it = home_.find(pid);
  if (rec && (it == home_.end() || &it->second != rec)) {  // stepped aside (StartRun)
    it = std::find_if(home_.begin(), home_.end(), [rec](const auto& kv) { return &kv.second == rec; });
  }
  if (it == home_.end()) return;
  node_.addresses.Release(it->second.gpid);
  home_.erase(it);
}

void HomeRole::PlaceRun(std::shared_ptr<ClientChannel> client, pb::SpawnRequest spawn,
                        std::vector<std::string> candidates, bool explicit_target, bool lock) {
  if (candidates.empty()) return RunFailed(client, "no node can take it", 255);
  const std::string target = candidates.front();
  candidates.erase(candidates.begin());
  if (target == node_.name()) return RunHere(client, spawn, lock);
  const std::string address = node_.AddressOf(target);
  // Counted on the target from now on, until the home's record of the
  // process counts it or the attempt fails: the next `roam run` of a burst
  // must see it.
  auto hold = std::make_shared<PendingPlacements::Hold>(placing_.Take(target));
  // A guest that cannot be reached or refuses: next candidate, unless the
  // user named this node.
  auto next = [this, client, spawn, candidates, explicit_target, lock, target, hold](const std::string& why, int code) {
    hold->Release();
    if (explicit_target || candidates.empty()) return RunFailed(client, why, code);
    spdlog::info("{}: {}; trying {}", spawn.gpid(), why, candidates.front());
    PlaceRun(client, spawn, candidates, false, lock);
  };
  node_.links->Open(
      address, [this, client, spawn, next, target, hold](Result<std::shared_ptr<LinkSession>> r, const std::string&) {
        if (!r.ok()) return next("cannot reach " + target + ": " + r.status().message(), 255);
        std::shared_ptr<LinkSession> link = *r;
        link->set_handlers(
            [this, client, spawn, next, target, link, hold](pb::LinkFrame& f) {
              if (!f.has_reply()) return link->Close("expected a reply", false);
              if (!f.reply().error().empty()) {
                link->set_handlers(nullptr, nullptr);
                link->Close("refused", false);
                return next(f.reply().error(), f.reply().exit_code() ? f.reply().exit_code() : 255);
              }
              const pid_t pid = static_cast<pid_t>(spawn.pid());
              HomeProcess& rec = home_[pid];
              rec.gpid = spawn.gpid();
              rec.pid = pid;
              rec.creds = spawn.creds();
              rec.command = JoinArgv(spawn.spec());
              rec.where = target;
              rec.spawn = spawn;
              rec.started_ms = SteadyMs();
              rec.stats.set_state("running");
              hold->Release();  // the record counts it now
              rec.remote = std::make_shared<RemoteRun>(client, link, &rec);
              pb::StreamFrame started;
              started.mutable_started()->set_gpid(spawn.gpid());
              started.mutable_started()->set_where(target);
              client->Send(started);
              spdlog::info("{} ({}) runs on {}", rec.gpid, rec.command, target);
              rec.remote->Start([this, pid, r = &rec] { EndRecord(pid, r); });
            },
            [next, target](const std::string& why) { next("lost " + target + " while starting: " + why, 255); });
        pb::LinkFrame req;
        *req.mutable_request()->mutable_requester() = spawn.creds();
        *req.mutable_request()->mutable_spawn() = spawn;
        link->Send(req);
      });
}

void HomeRole::RunHere(std::shared_ptr<ClientChannel> client, const pb::SpawnRequest& spawn, bool lock) {
  const pid_t pid = static_cast<pid_t>(spawn.pid());
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) return RunFailed(client, "pidfd_open " + std::to_string(pid) + ": " + strerror(errno), 255);
  if (!spawn.spec().address().empty()) {
    // Its cgroup (job_cgroup.h) goes beside the one roam run is in; roam
    // run execs the program once told where it runs, below.
    if (Status st = node_.addresses.Hold(spawn.gpid(), spawn.spec().address(), pid); !st.ok()) {
      ::close(pidfd);
      return RunFailed(client, st.message(), 255);
    }
    if (Status st = EnterCgroup(node_.addresses.cgroup_dir(spawn.gpid()), {pid}); !st.ok()) {
      spdlog::warn("{}: {}", spawn.gpid(), st.message());
    }
  }
  HomeProcess& rec = home_[pid];
  rec.gpid = spawn.gpid();
  rec.pid = pid;
  rec.creds = spawn.creds();
  rec.command = JoinArgv(spawn.spec());
  rec.where = node_.name();
  rec.spawn = spawn;
  rec.started_ms = SteadyMs();
  rec.lock = lock;
  rec.stats.set_state("running");
  rec.pidfd = std::make_unique<asio::posix::stream_descriptor>(node_.io, pidfd);
  Watch(pid);
  pb::StreamFrame started;
  started.mutable_started()->set_gpid(spawn.gpid());
  started.mutable_started()->set_where(node_.name());
  started.mutable_started()->set_run_here(true);
  started.mutable_started()->set_address(spawn.spec().address());
  if (std::string t = EnvValue(spawn.spec(), "TMPDIR"); !t.empty() && t == node_.cfg.job_tmpdir) {
    started.mutable_started()->set_tmpdir(t);
  }
  client->Send(started);
  client->Close("runs here");
}

void HomeRole::Watch(pid_t pid) {
  auto it = home_.find(pid);
  if (it == home_.end() || !it->second.pidfd) return;
  // Readable once the process has ended; the record goes with it. The
  // reactor's word is only a hint: under a burst of `roam run`s it woke
  // this wait while the process still ran, not yet exec'd (1 or 2 records
  // of 12 lost: test_placement found it), so the kernel is asked again
  // before the record goes.
  it->second.pidfd->async_wait(asio::posix::stream_descriptor::wait_read, [this, pid](asio::error_code ec) {
    if (ec == asio::error::operation_aborted) return;
    auto rec = home_.find(pid);
    if (!ec && rec != home_.end() && rec->second.pidfd && !PidfdReadable(rec->second.pidfd->native_handle())) {
      return Watch(pid);
    }
    EndRecord(pid);
  });
}

// ---- roam ps ---------------------------------------------------------------------------

void HomeRole::SampleProcesses() {
  const int64_t now = NodeContext::Now();
  for (auto& [pid, p] : home_) {
    if (!p.pidfd) continue;  // remote: the guest sends its figures
    Result<ProcSample> s = SampleProc(pid);
    if (!s.ok()) continue;
    p.stats.set_cpu_percent(p.last_sample_ms ? CpuPercent(p.last_ticks, s->cpu_ticks, now - p.last_sample_ms) : 0);
    p.stats.set_rss_bytes(s->rss_bytes);
    p.stats.set_time_seconds(TicksToSeconds(s->cpu_ticks));
    p.stats.set_state(ProcStateName(s->state));
    p.stats.set_cantmove(CantMoveReason(pid, p.spawn.spec().address()));
    p.stats.set_demand(p.last_sample_ms ? CpuDemand(p.last_sched_ns, s->sched_ns, now - p.last_sample_ms) : 0);
    p.last_ticks = s->cpu_ticks;
    p.last_sched_ns = s->sched_ns;
    p.last_sample_ms = now;
  }
}

pb::PsReply HomeRole::LocalPs(const pb::Credentials& requester) const {
  pb::PsReply reply;
  for (auto& [pid, p] : home_) {
    pb::ProcessView* v = reply.add_processes();
    v->set_gpid(p.gpid);
    v->set_pid(static_cast<uint32_t>(pid));
    v->set_user(p.creds.user());
    v->set_uid(p.creds.uid());
    v->set_home(node_.name());
    v->set_where(p.where);
    v->set_state(p.stats.state());
    v->set_nmig(p.nmig);
    v->set_lock(p.lock);
    // What keeps it from moving (threads, sockets ...: docs/MIGRATION.md).
    v->set_cantmove(p.stats.cantmove());
    v->set_address(p.spawn.spec().address());
    v->set_cpu_percent(p.stats.cpu_percent());
    v->set_rss_bytes(p.stats.rss_bytes());
    v->set_time_seconds(p.cpu_seconds());
    if (requester.uid() == 0 || requester.uid() == p.creds.uid()) v->set_command(p.command);
  }
  return reply;
}

void HomeRole::Ps(bool all, const pb::Credentials& requester, std::function<void(pb::PsReply)> done) {
  if (!all) return done(LocalPs(requester));
  struct Gather {
    pb::PsReply reply;
    int pending = 0;
    std::function<void(pb::PsReply)> done;
  };
  auto g = std::make_shared<Gather>();
  g->reply = LocalPs(requester);
  g->done = std::move(done);
  auto finish = [g] {
    if (--g->pending > 0) return;
    auto* procs = g->reply.mutable_processes();
    std::sort(procs->begin(), procs->end(), [](const pb::ProcessView& a, const pb::ProcessView& b) {
      return a.home() != b.home() ? a.home() < b.home() : a.pid() < b.pid();
    });
    g->done(std::move(g->reply));
  };
  g->pending = 1;
  for (const auto& [name, m] : node_.swim->members()) {
    if (name == node_.name() || m.state != pb::ALIVE) continue;
    ++g->pending;
    pb::LinkRequest req;
    *req.mutable_requester() = requester;
    req.mutable_ps();
    node_.AskNode(name, req, [g, finish, name](Result<pb::LinkReply> r) {
      if (r.ok() && r->error().empty()) {
        for (auto& p : *r->mutable_ps()->mutable_processes()) *g->reply.add_processes() = std::move(p);
      } else {
        g->reply.add_unreachable(name);
      }
      finish();
    });
  }
  finish();
}

// ---- roam kill -------------------------------------------------------------------------

std::string HomeRole::KillHere(pid_t pid, int signo, const pb::Credentials& requester) {
  const std::string gpid = node_.name() + ":" + std::to_string(pid);
  auto it = home_.find(pid);
  if (it == home_.end()) return "no process " + gpid;
  HomeProcess& p = it->second;
  if (requester.uid() != 0 && requester.uid() != p.creds.uid()) {
    return gpid + " belongs to another user";
  }
  spdlog::info("{}: signal {} from {}", gpid, signo, requester.user());
  if (auto d = departures_.find(pid); d != departures_.end()) {
    d->second->HoldSignal(signo);  // delivered once, after the move, wherever it then runs
  } else if (p.remote) {
    p.remote->Signal(signo);
  } else if (p.pidfd && ::syscall(SYS_pidfd_send_signal, p.pidfd->native_handle(), signo, nullptr, 0) != 0) {
    return "kill " + gpid + ": " + strerror(errno);
  }
  return "";
}

void HomeRole::Kill(const std::string& gpid, int signo, const pb::Credentials& requester,
                    std::function<void(const std::string& error)> done) {
  std::string home;
  pid_t pid = 0;
  if (!SplitGpid(gpid, &home, &pid)) return done("bad GPID '" + gpid + "' (expected NODE:PID, e.g. n1:4242)");
  if (signo < 0 || signo >= NSIG) return done("bad signal " + std::to_string(signo));
  if (home == node_.name()) return done(KillHere(pid, signo, requester));
  auto it = node_.swim->members().find(home);
  if (it == node_.swim->members().end()) return done("no node named " + home);
  if (it->second.state != pb::ALIVE) {
    return done("home node " + home + " is " + MemberStateName(it->second.state));
  }
  pb::LinkRequest req;
  *req.mutable_requester() = requester;
  req.mutable_kill()->set_gpid(gpid);
  req.mutable_kill()->set_signo(signo);
  node_.AskNode(home, req, [done, home](Result<pb::LinkReply> r) {
    if (!r.ok()) return done("cannot reach " + home + ": " + r.status().message());
    done(r->error());
  });
}

// ---- what the balancer and roamd read -------------------------------------------------

bool HomeRole::Moving(pid_t pid) const {
  auto it = home_.find(pid);
  if (it == home_.end()) return false;
  return (it->second.remote && it->second.remote->moving()) || departures_.count(pid) != 0;
}

std::vector<std::string> HomeRole::Away() const {
  std::vector<std::string> out;
  for (const auto& [pid, p] : home_) {
    if (p.where != node_.name()) out.push_back(p.gpid);
  }
  return out;
}

void HomeRole::NodeLost(const std::string& node, const std::string& why) {
  std::vector<std::shared_ptr<RemoteRun>> lost;
  for (auto& [pid, p] : home_) {
    if (p.remote && p.where == node) lost.push_back(p.remote);
  }
  for (auto& r : lost) r->NodeLost(why);
}

}  // namespace roam
