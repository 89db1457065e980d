// Moves (docs/MIGRATION.md, proto/migrate.proto): `roam migrate` at the
// home, which arbitrates; the source's side (MigrationOut) and the target's
// side (MigrationIn), started here from their link requests.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fmt/format.h>

#include "common/file_util.h"
#include "common/proc_stat.h"
#include "wire/reply.h"
#include "node/roamd.h"

namespace roam {

namespace {

constexpr auto kForwardedMoveTimeout = std::chrono::seconds(330);
constexpr int kPidFreeAttempts = 150;  // x 20 ms
constexpr auto kForwardedAdminTimeout = std::chrono::seconds(3600);  // a drain is many moves

// A process of this roamd's own on its way out: a staged root or seed of a
// move that just failed here, killed by the engine and reaped a moment later.
bool OurLeftover(pid_t pid) {
  Result<std::string> text = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  ProcStat ps;
  return text.ok() && ParseProcStat(*text, &ps) && ps.ppid == getpid();
}

void Reply(const std::shared_ptr<LinkSession>& link, pb::LinkReply reply) {
  pb::LinkFrame f;
  *f.mutable_reply() = std::move(reply);
  link->Send(f);
}

}  // namespace

// ---- roam migrate: at the home ---------------------------------------------------------

void Roamd::Migrate(const std::string& gpid, const std::string& to, const pb::Credentials& requester, MoveDone done) {
  std::string home;
  pid_t pid = 0;
  if (!SplitGpid(gpid, &home, &pid)) {
    return done(Status::Error(StatusCode::kInvalid, "bad GPID '" + gpid + "' (expected NODE:PID, e.g. n1:4242)"));
  }
  if (home == swim_->name()) return MigrateHere(pid, to, requester, std::move(done));
  auto it = swim_->members().find(home);
  if (it == swim_->members().end()) return done(Status::Error(StatusCode::kNotFound, "no node named " + home));
  if (it->second.state != pb::ALIVE) {
    return done(Status::Error(StatusCode::kUnavailable, "home node " + home + " is " + MemberStateName(it->second.state)));
  }
  pb::LinkRequest req;
  *req.mutable_requester() = requester;
  req.mutable_migrate()->set_gpid(gpid);
  req.mutable_migrate()->set_to(to);
  AskNode(
      home, req,
      [done, home](Result<pb::LinkReply> r) {
        if (!r.ok()) return done(r.status().Prefixed("cannot reach " + home + ": "));
        if (Status st = ReplyStatus(*r); !st.ok()) return done(st);
        done(r->migration());
      },
      kForwardedMoveTimeout);
}

Result<std::vector<std::string>> Roamd::ChooseTargets(const HomeProcess& p, const std::string& to) const {
  const std::string& self = swim_->name();
  if (to == "home" || to == self) {
    if (p.where == self) return Status::Error(StatusCode::kInvalid, p.gpid + " already runs at home, on " + self);
    return std::vector<std::string>{self};
  }
  std::string error;
  if (to == "best") {
    std::vector<std::string> others;
    for (const std::string& n : Candidates("", false, &error)) {
      if (n != self && n != p.where) others.push_back(n);
    }
    if (others.empty()) return Status::Error(StatusCode::kRefused, "no other node can take " + p.gpid);
    return others;
  }
  if (to == p.where) return Status::Error(StatusCode::kInvalid, p.gpid + " already runs on " + to);
  std::vector<std::string> c = Candidates(to, false, &error);
  if (c.empty()) {
    const bool unknown = swim_->members().find(to) == swim_->members().end();
    return Status::Error(unknown ? StatusCode::kNotFound : StatusCode::kRefused, error);
  }
  return c;
}

void Roamd::MigrateHere(pid_t pid, const std::string& to, const pb::Credentials& requester, MoveDone done) {
  const std::string gpid = swim_->name() + ":" + std::to_string(pid);
  auto it = home_.find(pid);
  if (it == home_.end()) return done(Status::Error(StatusCode::kNotFound, "no process " + gpid));
  HomeProcess& p = it->second;
  // The MOSIX rule: whoever may kill it may move it.
  if (requester.uid() != 0 && requester.uid() != p.creds.uid()) {
    return done(Status::Error(StatusCode::kPermission, gpid + " belongs to another user"));
  }
  if (p.lock) {
    return done(Status::Error(StatusCode::kRefused, gpid + " is locked (roam unlock " + gpid + " lets it move)"));
  }
  if ((p.remote && p.remote->moving()) || departures_.count(pid)) {
    return done(Status::Error(StatusCode::kBusy, gpid + " is already moving"));
  }
  Result<std::vector<std::string>> targets = ChooseTargets(p, to);
  if (!targets.ok()) return done(targets.status());
  move_counters_.Started();
  done = [this, done = std::move(done)](Result<pb::MigrationFigures> r) {
    if (r.ok()) {
      move_counters_.Succeeded(r->frozen_ms());
    } else {
      move_counters_.Failed();
    }
    done(std::move(r));
  };
  if (targets->front() == swim_->name()) {
    spdlog::info("{}: move {} -> home asked by {}", gpid, p.where, requester.user());
    return ComeHome(p, std::move(done));
  }
  MoveToFirst(pid, std::move(*targets), requester, std::move(done));
}

// Tries `targets` in order: a node that refuses for a reason of its own
// (busy, full, blocked, different, unreachable) passes the move to the
// next; any other failure ends it.
void Roamd::MoveToFirst(pid_t pid, std::vector<std::string> targets, const pb::Credentials& requester,
                        MoveDone done) {
  const std::string target = targets.front();
  targets.erase(targets.begin());
  auto it = home_.find(pid);
  if (it == home_.end()) return done(Status::Error(StatusCode::kNotFound, "the process ended before it could move"));
  const std::string from = it->second.where;
  MoveDone attempt = done;
  if (!targets.empty()) {
    attempt = [this, pid, targets, requester, done, target, from](Result<pb::MigrationFigures> r) {
      auto p = home_.find(pid);
      const bool still = p != home_.end() && p->second.where == from && !(p->second.remote && p->second.remote->moving()) &&
                         !departures_.count(pid);
      if (r.ok() || !AnotherNodeMightDo(r.status().code()) || !still) return done(std::move(r));
      spdlog::info("{}: {}; trying {}", p->second.gpid, r.status().message(), targets.front());
      MoveToFirst(pid, targets, requester, done);
    };
  }
  MoveTo(pid, target, requester, std::move(attempt));
}

void Roamd::MoveTo(pid_t pid, const std::string& target, const pb::Credentials& requester, MoveDone done) {
  HomeProcess& p = home_.at(pid);
  spdlog::info("{}: move {} -> {} asked by {}", p.gpid, p.where, target, requester.user());
  const std::string address = AddressOf(target);
  pb::LinkRequest adopt;
  *adopt.mutable_requester() = requester;
  *adopt.mutable_adopt() = p.spawn;
  adopt.set_move_rss_bytes(p.stats.rss_bytes());
  if (auto tag = balance_tags_.find(pid); tag != balance_tags_.end()) {
    adopt.set_move_demand(tag->second.first);
    adopt.set_balance_limit(tag->second.second);
  }
  links_->Open(address,
              [this, pid, target, address, adopt, done](Result<std::shared_ptr<LinkSession>> r, const std::string&) {
                if (!r.ok()) {
                  return done(Status::Error(StatusCode::kUnavailable,
                                            "cannot reach " + target + ": " + r.status().message()));
                }
                std::shared_ptr<LinkSession> link = *r;
                link->set_handlers(
                    [this, pid, target, address, done, link](pb::LinkFrame& f) {
                      if (!f.has_reply()) return link->Close("expected a reply", false);
                      if (Status st = ReplyStatus(f.reply()); !st.ok()) {
                        link->set_handlers(nullptr, nullptr);
                        link->Close("refused", false);
                        return done(st);
                      }
                      auto it = home_.find(pid);
                      const bool gone = it == home_.end();
                      if (gone || (it->second.remote && it->second.remote->moving()) || departures_.count(pid)) {
                        // Ended, or another move of it began meanwhile: this one stops here.
                        link->set_handlers(nullptr, nullptr);
                        link->Close("not moving", false);
                        return done(gone ? Status::Error(StatusCode::kNotFound, "the process ended before it could move")
                                         : Status::Error(StatusCode::kBusy, "it is already moving"));
                      }
                      if (it->second.remote) return it->second.remote->Move(target, address, link, faults_, done);
                      DepartHome(it->second, target, address, link, done);
                    },
                    [done, target](const std::string& why) {
                      done(Status::Error(StatusCode::kUnavailable, "lost " + target + " before the move: " + why));
                    });
                pb::LinkFrame req;
                *req.mutable_request() = adopt;
                link->Send(req);
              });
}

// A process at home leaves it (HomeDeparture): it becomes its own deputy.
void Roamd::DepartHome(HomeProcess& p, const std::string& target, const std::string& address,
                       std::shared_ptr<LinkSession> adopt, MoveDone done) {
  const pid_t pid = p.pid;
  if (p.pidfd) p.pidfd->cancel();  // frozen, it cannot end; a failed move watches it again
  DepartureConfig c;
  c.to = target;
  c.address = address;
  c.roam_path = roam_path_;
  c.control_socket = cfg_.control_socket;
  c.faults = faults_;
  c.codec = codec_;
  c.addresses = &addresses_;
  c.on_resumed = [this, pid] { WatchHomeProcess(pid); };
  c.on_session_end = [this, pid] { EndHomeRecord(pid); };
  auto d = std::make_shared<HomeDeparture>(io_, *engine_, *links_, &p, std::move(adopt), std::move(c));
  departures_[pid] = d;
  d->Start(std::move(done), [this, pid] { departures_.erase(pid); });
}

// A process running elsewhere comes back home (HomeArrival): its deputy
// becomes it.
void Roamd::ComeHome(HomeProcess& p, MoveDone done) {
  if (!p.remote) return done(Status::Error(StatusCode::kInvalid, p.gpid + " already runs at home"));
  // A stopped deputy (Ctrl-Z) could not become the process until continued.
  if (ReadProcState(p.pid) == 'T') {
    return done(Status::Error(StatusCode::kBusy, p.gpid + " is stopped (Ctrl-Z): it can come home once it runs again (fg or bg)"));
  }
  if (last_load_.mem_total() != 0 && p.stats.rss_bytes() > last_load_.mem_free()) {
    return done(Status::Error(StatusCode::kNoRoom, fmt::format("its home {} has no room for {}: it uses {:.0f} MiB, {:.0f} MiB are free",
                                          swim_->name(), p.gpid, p.stats.rss_bytes() / 1048576.0,
                                          last_load_.mem_free() / 1048576.0)));
  }
  // The seed (the user's deputy) must reach its image: the move directory
  // is traversable, the image's own directory is the user's.
  const std::string moves = run_dir_ + "/migrate";
  Status st = MakeDirs(moves, 0711);
  if (st.ok() && chmod(moves.c_str(), 0711) != 0) st = Status::Errno("chmod " + moves);
  if (!st.ok()) return done(st);
  const pid_t pid = p.pid;
  const std::string gpid = p.gpid;
  ArrivalConfig c;
  c.image_dir = moves + "/home-in-" + std::to_string(pid);
  c.roam_path = roam_path_;
  c.control_socket = cfg_.control_socket;
  c.faults = faults_;
  c.addresses = &addresses_;
  arrivals_[gpid] = p.remote->MoveHome(
      swim_->name(), AddressOf(swim_->name()), *engine_, std::move(c),
      [this, gpid, done](Result<pb::MigrationFigures> r) {
        arrivals_.erase(gpid);
        done(std::move(r));
      },
      [this, pid](std::vector<int> signals) { CameHome(pid, signals); });
}

void Roamd::CameHome(pid_t pid, const std::vector<int>& held_signals) {
  auto it = home_.find(pid);
  if (it == home_.end()) return;
  HomeProcess& p = it->second;
  // The RemoteRun is over (its lambdas keep it alive until they return).
  asio::post(io_, [r = std::move(p.remote)] {});
  p.where = swim_->name();
  p.stats.set_state("running");
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {  // ended at once: nothing to follow
    spdlog::warn("{}: pidfd_open after coming home: {}", p.gpid, strerror(errno));
    EndHomeRecord(pid);
    return;
  }
  p.pidfd = std::make_unique<asio::posix::stream_descriptor>(io_, pidfd);
  WatchHomeProcess(pid);
  for (int sig : held_signals) ::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0);
}

// ---- roam migrate on a terminal: how far it has come ------------------------------------

void Roamd::MoveProgressOf(const std::string& gpid, const pb::Credentials& requester, ProgressDone done) {
  std::string home;
  pid_t pid = 0;
  if (!SplitGpid(gpid, &home, &pid)) return done(Status::Error(StatusCode::kInvalid, "bad GPID '" + gpid + "'"));
  if (home != swim_->name()) {
    pb::LinkRequest req;
    *req.mutable_requester() = requester;
    req.mutable_move_progress()->set_gpid(gpid);
    return AskNode(home, req, [done, home](Result<pb::LinkReply> r) {
      if (!r.ok()) return done(r.status().Prefixed("cannot reach " + home + ": "));
      if (Status st = ReplyStatus(*r); !st.ok()) return done(st);
      done(r->move_progress());
    });
  }
  auto it = home_.find(pid);
  if (it == home_.end()) return done(Status::Error(StatusCode::kNotFound, "no process " + gpid));
  if (requester.uid() != 0 && requester.uid() != it->second.creds.uid()) {
    return done(Status::Error(StatusCode::kPermission, gpid + " belongs to another user"));
  }
  if (auto d = departures_.find(pid); d != departures_.end()) return done(d->second->progress());
  if (it->second.remote && it->second.remote->moving()) return done(it->second.remote->progress());
  done(Status::Error(StatusCode::kNotFound, gpid + " is not moving"));
}

// ---- roam lock / unlock ----------------------------------------------------------------

void Roamd::Lock(const std::string& gpid, bool lock, const pb::Credentials& requester,
                 std::function<void(const std::string& error)> done) {
  std::string home;
  pid_t pid = 0;
  if (!SplitGpid(gpid, &home, &pid)) return done("bad GPID '" + gpid + "' (expected NODE:PID, e.g. n1:4242)");
  if (home != swim_->name()) {
    pb::LinkRequest req;
    *req.mutable_requester() = requester;
    req.mutable_lock()->set_gpid(gpid);
    req.mutable_lock()->set_lock(lock);
    return AskNode(home, req, [done, home](Result<pb::LinkReply> r) {
      if (!r.ok()) return done("cannot reach " + home + ": " + r.status().message());
      done(r->error());
    });
  }
  auto it = home_.find(pid);
  if (it == home_.end()) return done("no process " + gpid);
  if (requester.uid() != 0 && requester.uid() != it->second.creds.uid()) return done(gpid + " belongs to another user");
  it->second.lock = lock;
  spdlog::info("{} {} by {}", gpid, lock ? "locked" : "unlocked", requester.user());
  done("");
}

// ---- roam node block|unblock|expel|bring|drain -----------------------------------------

void Roamd::NodeAdmin(const pb::NodeAdminRequest& req, const pb::Credentials& requester, NodeAdminDone done) {
  if (requester.uid() != 0) return done(Status::Error("administering nodes needs root"));
  if (!req.node().empty() && req.node() != swim_->name()) {
    auto it = swim_->members().find(req.node());
    if (it == swim_->members().end()) return done(Status::Error("no node named " + req.node()));
    if (it->second.state != pb::ALIVE) {
      return done(Status::Error("node " + req.node() + " is " + MemberStateName(it->second.state)));
    }
    pb::LinkRequest fwd;
    *fwd.mutable_requester() = requester;
    *fwd.mutable_node_admin() = req;
    const std::string node = req.node();
    return AskNode(
        node, fwd,
        [done, node](Result<pb::LinkReply> r) {
          if (!r.ok()) return done(Status::Error("cannot reach " + node + ": " + r.status().message()));
          if (!r->error().empty()) return done(Status::Error(r->error()));
          done(r->node_admin());
        },
        kForwardedAdminTimeout);
  }
  using V = pb::NodeAdminRequest;
  switch (req.verb()) {
    case V::BLOCK:
    case V::UNBLOCK:
      sampler_.set_accepts_guests(req.verb() == V::UNBLOCK);
      draining_ = false;
      spdlog::info("{} guests", req.verb() == V::BLOCK ? "refusing" : "accepting");
      PublishLoad();
      return done(pb::NodeAdminReply());
    case V::DRAIN:
      sampler_.set_accepts_guests(false);
      draining_ = true;
      PublishLoad();
      spdlog::info("draining: refusing guests and moving the present ones away");
      [[fallthrough]];
    case V::EXPEL: {
      if (req.verb() == V::EXPEL) spdlog::info("expelling guests, asked by {}", requester.user());
      std::vector<std::string> gpids;
      for (const auto& [pid, g] : guests_) gpids.push_back(g->gpid());
      return MoveAll(gpids, "best", requester, std::move(done));
    }
    case V::BALANCE_ON:
    case V::BALANCE_OFF:
      if (!req.policy().empty() && !ParseBalancePolicy(req.policy(), &cfg_.balancer.policy)) {
        return done(Status::Error(StatusCode::kInvalid, "unknown balancing policy '" + req.policy() + "' (cost or load)"));
      }
      SetBalance(req.verb() == V::BALANCE_ON);
      return done(pb::NodeAdminReply());
    case V::USHER_ON:
    case V::USHER_OFF:
      usher_on_ = req.verb() == V::USHER_ON;
      spdlog::info("memory ushering {}", usher_on_ ? "on" : "off");
      PublishLoad();
      return done(pb::NodeAdminReply());
    case V::BRING: {
      std::vector<std::string> gpids;
      for (const auto& [pid, p] : home_) {
        if (p.where != swim_->name()) gpids.push_back(p.gpid);
      }
      return MoveAll(gpids, "home", requester, std::move(done));
    }
    default:
      return done(Status::Error("unknown node verb"));
  }
}

void Roamd::MoveAll(const std::vector<std::string>& gpids, const std::string& to, const pb::Credentials& requester,
                    NodeAdminDone done) {
  // One move after the other: each is a freeze, and a node is emptied
  // fastest without its moves competing for the same CPUs and link.
  struct Batch {
    std::vector<std::string> gpids;
    size_t next = 0;
    pb::NodeAdminReply reply;
    NodeAdminDone done;
  };
  auto batch = std::make_shared<Batch>();
  batch->gpids = gpids;
  batch->done = std::move(done);
  auto step = std::make_shared<std::function<void()>>();
  *step = [this, batch, step, to, requester] {
    if (batch->next == batch->gpids.size()) {
      // Locals first: clearing *step destroys this lambda and its captures.
      std::shared_ptr<Batch> b = batch;
      std::shared_ptr<std::function<void()>> keep = step;
      *keep = nullptr;  // breaks the cycle
      auto d = std::move(b->done);
      return d(b->reply);
    }
    const std::string gpid = batch->gpids[batch->next++];
    Migrate(gpid, to, requester, [batch, step, gpid](Result<pb::MigrationFigures> r) {
      if (r.ok()) {
        *batch->reply.add_moved() = *r;
      } else {
        batch->reply.add_failures(gpid + ": " + r.status().message());
      }
      if (*step) (*step)();
    });
  };
  (*step)();
}

// ---- the target's side -----------------------------------------------------------------

void Roamd::StartAdopt(std::shared_ptr<LinkSession> link, const std::string& peer, const pb::SpawnRequest& req,
                       uint64_t rss_bytes, double demand, double balance_limit, int attempt) {
  auto refuse = [&](StatusCode code, const std::string& why) {
    pb::LinkReply reply;
    SetReplyError(&reply, Status::Error(code, why));
    Reply(link, std::move(reply));
    link->Close("refused");
  };
  if (!sampler_.accepts_guests()) return refuse(StatusCode::kRefused, "node " + swim_->name() + " refuses guests (blocked)");
  if (req.home() != peer || req.gpid() != peer + ":" + std::to_string(req.pid())) {
    return refuse(StatusCode::kPermission, "adopt request from " + peer + " for " + req.gpid());
  }
  const pid_t pid = static_cast<pid_t>(req.pid());
  if (pid <= 0 || guests_.count(pid) || incoming_.count(req.gpid()) || ::kill(pid, 0) == 0) {
    // Moving straight back: the copy this node just gave away may still be
    // on its way out (killed after the commit, reaped a moment later); or a
    // move here just failed and its staged root is still being killed.
    // Wait for it, a little, rather than refuse.
    if (pid > 0 && attempt < kPidFreeAttempts &&
        (outgoing_.count(pid) || guests_.count(pid) || incoming_.count(req.gpid()) || OurLeftover(pid))) {
      auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(20));
      timer->async_wait([this, timer, link, peer, req, rss_bytes, demand, balance_limit, attempt](asio::error_code) {
        StartAdopt(link, peer, req, rss_bytes, demand, balance_limit, attempt + 1);
      });
      return;
    }
    return refuse(StatusCode::kBusy, "pid " + std::to_string(req.pid()) + " is taken on " + swim_->name());
  }
  if (last_load_.mem_total() != 0) {
    // Room for it, beside what other moves here bring, above the floor that
    // ushering keeps (else it would be moved away again at once).
    uint64_t promised = static_cast<uint64_t>(std::max<int64_t>(arrived_mem_.mem(swim_->name(), last_sample_ms_), 0));
    for (const auto& [g, move] : incoming_) promised += move.rss_bytes;
    const uint64_t floor =
        usher_on_ ? static_cast<uint64_t>(cfg_.usher.free_share * static_cast<double>(last_load_.mem_total())) : 0;
    if (rss_bytes + promised + floor > last_load_.mem_free()) {
      return refuse(StatusCode::kNoRoom,
                    fmt::format("node {} has no room for {}: it uses {:.0f} MiB, {:.0f} MiB are free, {:.0f} MiB promised "
                                "to moves arriving, {:.0f} MiB kept free",
                                swim_->name(), req.gpid(), rss_bytes / 1048576.0, last_load_.mem_free() / 1048576.0,
                                promised / 1048576.0, floor / 1048576.0));
    }
  }
  if (access(req.spec().cwd().c_str(), X_OK) != 0) {
    return refuse(StatusCode::kMismatch, "its working directory " + req.spec().cwd() + " does not exist on " + swim_->name());
  }
  if (Status st = AdmitBalancedMove(req.gpid(), demand, balance_limit, rss_bytes); !st.ok()) {
    return refuse(st.code(), st.message());
  }
  auto in = std::make_shared<MigrationIn>(io_, *engine_, req, link, run_dir_ + "/migrate/in-" + std::to_string(pid),
                                          faults_, &addresses_);
  incoming_[req.gpid()] = IncomingMove{in, rss_bytes};
  const std::string gpid = req.gpid();
  in->Start(
      [this, rss_bytes](std::shared_ptr<GuestProcess> guest) {
        arrived_mem_.Add(Now(), swim_->name(), 0, static_cast<int64_t>(rss_bytes));
        AdoptGuest(guest);
      },
      [this, gpid] {
        incoming_.erase(gpid);
      });
  Reply(link, pb::LinkReply());
}

void Roamd::StartMoveIn(std::shared_ptr<LinkSession> link, const std::string& peer, const pb::MoveIn& req) {
  if (auto a = arrivals_.find(req.gpid()); a != arrivals_.end()) {
    spdlog::info("{}: image coming home from {}", req.gpid(), peer);
    std::shared_ptr<HomeArrival> arrival = a->second;
    return arrival->AcceptSource(link, req, swim_->name());
  }
  auto it = incoming_.find(req.gpid());
  if (it == incoming_.end() || it->second.in->has_source()) {
    pb::LinkReply reply;
    SetReplyError(&reply, Status::Error(StatusCode::kInvalid, "no move of " + req.gpid() + " is expected on " + swim_->name()));
    Reply(link, std::move(reply));
    return link->Close("refused");
  }
  spdlog::info("{}: image arriving from {}", req.gpid(), peer);
  it->second.in->AcceptSource(link, req, swim_->name());
}

// ---- the source's side -----------------------------------------------------------------

void Roamd::StartMoveOut(std::shared_ptr<GuestProcess> guest, const pb::MoveOut& order) {
  const pid_t pid = guest->pid();
  if (outgoing_.count(pid)) {
    // The home already gave up on the last move (its target refused) and
    // asks for the next while this node still resumes the process: the
    // order waits for the resume.
    next_move_out_[pid] = {guest, order};
    return;
  }
  auto out = std::make_shared<MigrationOut>(io_, *engine_, *links_, guest, faults_, codec_, &addresses_);
  outgoing_[pid] = out;
  out->Start(order, [this, pid] {
    outgoing_.erase(pid);
    reaper_.Reap();  // whatever exited while the engine held it
    auto next = next_move_out_.find(pid);
    if (next == next_move_out_.end()) return;
    auto [guest, order] = std::move(next->second);
    next_move_out_.erase(next);
    if (guests_.count(pid) && guests_[pid] == guest) StartMoveOut(guest, order);
  });
}

}  // namespace roam
