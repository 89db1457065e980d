// HomeRole (home_role.h): the home's side of moves, which it arbitrates
// (docs/MIGRATION.md, proto/migrate.proto): `roam migrate`, the process
// leaving home (HomeDeparture) and coming back (HomeArrival), and `roam
// lock`. The source's and target's sides are the Migrator's (migrator.h).
#include <fmt/format.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/file_util.h"
#include "common/proc_stat.h"
#include "node/home_role.h"
#include "wire/reply.h"

namespace roam {

namespace {

constexpr auto kForwardedMoveTimeout = std::chrono::seconds(330);
// A move refused as busy is tried again this many times, after this pause.
constexpr int kBusyRetries = 2;
constexpr auto kBusyPause = std::chrono::milliseconds(200);

}  // namespace

// ---- roam migrate: at the home ---------------------------------------------------------

void HomeRole::Migrate(const std::string& gpid, const std::string& to, const pb::Credentials& requester,
                       MoveDone done) {
  std::string home;
  pid_t pid = 0;
  if (!SplitGpid(gpid, &home, &pid)) {
    return done(Status::Error(StatusCode::kInvalid, "bad GPID '" + gpid + "' (expected NODE:PID, e.g. n1:4242)"));
  }
  if (home == node_.name()) return MigrateHere(pid, to, requester, std::move(done));
  auto it = node_.swim->members().find(home);
  if (it == node_.swim->members().end()) return done(Status::Error(StatusCode::kNotFound, "no node named " + home));
  if (it->second.state != pb::ALIVE) {
    return done(
        Status::Error(StatusCode::kUnavailable, "home node " + home + " is " + MemberStateName(it->second.state)));
  }
  pb::LinkRequest req;
  *req.mutable_requester() = requester;
  req.mutable_migrate()->set_gpid(gpid);
  req.mutable_migrate()->set_to(to);
  node_.AskNode(
      home, req,
      [done, home](Result<pb::LinkReply> r) {
        if (!r.ok()) return done(r.status().Prefixed("cannot reach " + home + ": "));
        if (Status st = ReplyStatus(*r); !st.ok()) return done(st);
        done(r->migration());
      },
      kForwardedMoveTimeout);
}

Result<std::vector<std::string>> HomeRole::ChooseTargets(const HomeProcess& p, const std::string& to) const {
  const std::string& self = node_.name();
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
    const bool unknown = node_.swim->members().find(to) == node_.swim->members().end();
    return Status::Error(unknown ? StatusCode::kNotFound : StatusCode::kRefused, error);
  }
  return c;
}

void HomeRole::MigrateHere(pid_t pid, const std::string& to, const pb::Credentials& requester, MoveDone done,
                           BalanceTag tag) {
  const std::string gpid = node_.name() + ":" + std::to_string(pid);
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
  if (Moving(pid)) {
    return done(Status::Error(StatusCode::kBusy, gpid + " is already moving"));
  }
  if (p.remote && p.remote->remnant()) {
    return done(Status::Error(
        StatusCode::kRefused,
        gpid + " has exited; what it left running in the background stays on " + p.where + " until its output ends"));
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
  MoveOnce(pid, to, std::move(*targets), requester, tag, kBusyRetries, std::move(done));
}

// One try of a move asked once. A try refused as busy (kBusy: something
// in flight at the freeze, such as a connection made to one of its UNIX
// listeners in the last milliseconds, which the dump cannot carry; a PID
// taken a moment) has left the process running where it was: it is tried
// again a moment later, `retries` more times, if nothing else about the
// process changed meanwhile.
void HomeRole::MoveOnce(pid_t pid, const std::string& to, std::vector<std::string> targets,
                        const pb::Credentials& requester, BalanceTag tag, int retries, MoveDone done) {
  HomeProcess& p = home_.at(pid);
  const std::string from = p.where;
  if (retries > 0) {
    done = [this, pid, from, to, requester, tag, retries, done = std::move(done)](Result<pb::MigrationFigures> r) {
      if (r.ok() || r.status().code() != StatusCode::kBusy) return done(std::move(r));
      spdlog::info("{}:{}: {}; trying again in {} ms", node_.name(), pid, r.status().message(), kBusyPause.count());
      auto timer = std::make_shared<asio::steady_timer>(node_.io, kBusyPause);
      timer->async_wait([this, pid, from, to, requester, tag, retries, timer, r = std::move(r),
                         done = std::move(done)](asio::error_code) mutable {
        auto it = home_.find(pid);
        const bool same = it != home_.end() && it->second.where == from && !Moving(pid) && !it->second.lock &&
                          !(it->second.remote && it->second.remote->remnant());
        if (!same) return done(std::move(r));
        Result<std::vector<std::string>> again = ChooseTargets(it->second, to);
        if (!again.ok()) return done(std::move(r));
        MoveOnce(pid, to, std::move(*again), requester, tag, retries - 1, std::move(done));
      });
    };
  }
  if (targets.front() == node_.name()) {
    spdlog::info("{}: move {} -> home asked by {}", p.gpid, p.where, requester.user());
    return ComeHome(p, std::move(done));
  }
  MoveToFirst(pid, std::move(targets), requester, tag, std::move(done));
}

// Tries `targets` in order: a node that refuses for a reason of its own
// (busy, full, blocked, different, unreachable) passes the move to the
// next; any other failure ends it.
void HomeRole::MoveToFirst(pid_t pid, std::vector<std::string> targets, const pb::Credentials& requester,
                           BalanceTag tag, MoveDone done) {
  const std::string target = targets.front();
  targets.erase(targets.begin());
  auto it = home_.find(pid);
  if (it == home_.end()) return done(Status::Error(StatusCode::kNotFound, "the process ended before it could move"));
  const std::string from = it->second.where;
  MoveDone attempt = done;
  if (!targets.empty()) {
    attempt = [this, pid, targets, requester, tag, done, target, from](Result<pb::MigrationFigures> r) {
      auto p = home_.find(pid);
      const bool still = p != home_.end() && p->second.where == from && !Moving(pid);
      if (r.ok() || !AnotherNodeMightDo(r.status().code()) || !still) return done(std::move(r));
      spdlog::info("{}: {}; trying {}", p->second.gpid, r.status().message(), targets.front());
      MoveToFirst(pid, targets, requester, tag, done);
    };
  }
  MoveTo(pid, target, requester, tag, std::move(attempt));
}

void HomeRole::MoveTo(pid_t pid, const std::string& target, const pb::Credentials& requester, BalanceTag tag,
                      MoveDone done) {
  HomeProcess& p = home_.at(pid);
  spdlog::info("{}: move {} -> {} asked by {}", p.gpid, p.where, target, requester.user());
  const std::string address = node_.AddressOf(target);
  pb::LinkRequest adopt;
  *adopt.mutable_requester() = requester;
  *adopt.mutable_adopt() = p.spawn;
  adopt.set_move_rss_bytes(p.stats.rss_bytes());
  adopt.set_move_demand(tag.demand);
  adopt.set_balance_limit(tag.limit);
  node_.links->Open(
      address, [this, pid, target, address, adopt, done](Result<std::shared_ptr<LinkSession>> r, const std::string&) {
        if (!r.ok()) {
          return done(Status::Error(StatusCode::kUnavailable, "cannot reach " + target + ": " + r.status().message()));
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
              if (gone || Moving(pid)) {
                // Ended, or another move of it began meanwhile: this one stops here.
                link->set_handlers(nullptr, nullptr);
                link->Close("not moving", false);
                return done(gone ? Status::Error(StatusCode::kNotFound, "the process ended before it could move")
                                 : Status::Error(StatusCode::kBusy, "it is already moving"));
              }
              if (it->second.remote) return it->second.remote->Move(target, address, link, node_.faults, done);
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
void HomeRole::DepartHome(HomeProcess& p, const std::string& target, const std::string& address,
                          std::shared_ptr<LinkSession> adopt, MoveDone done) {
  const pid_t pid = p.pid;
  if (p.pidfd) p.pidfd->cancel();  // frozen, it cannot end; a failed move watches it again
  DepartureConfig c;
  c.to = target;
  c.address = address;
  c.roam_path = node_.roam_path;
  c.control_socket = node_.cfg.control_socket;
  c.faults = node_.faults;
  c.codec = node_.codec;
  c.addresses = &node_.addresses;
  c.on_resumed = [this, pid] { Watch(pid); };
  c.on_session_end = [this, pid, r = &p] { EndRecord(pid, r); };
  auto d = std::make_shared<HomeDeparture>(node_.io, *node_.engine, *node_.links, &p, std::move(adopt), std::move(c));
  departures_[pid] = d;
  d->Start(std::move(done), [this, pid] { departures_.erase(pid); });
}

// A process running elsewhere comes back home (HomeArrival): its deputy
// becomes it.
void HomeRole::ComeHome(HomeProcess& p, MoveDone done) {
  if (!p.remote) return done(Status::Error(StatusCode::kInvalid, p.gpid + " already runs at home"));
  // A stopped deputy (Ctrl-Z) could not become the process until continued.
  if (ReadProcState(p.pid) == 'T') {
    return done(Status::Error(StatusCode::kBusy,
                              p.gpid + " is stopped (Ctrl-Z): it can come home once it runs again (fg or bg)"));
  }
  if (node_.last_load.mem_total() != 0 && p.stats.rss_bytes() > node_.last_load.mem_free()) {
    return done(Status::Error(
        StatusCode::kNoRoom,
        fmt::format("its home {} has no room for {}: it uses {:.0f} MiB, {:.0f} MiB are free", node_.name(), p.gpid,
                    p.stats.rss_bytes() / 1048576.0, node_.last_load.mem_free() / 1048576.0)));
  }
  // The seed (the user's deputy) must reach its image: the move directory
  // is traversable, the image's own directory is the user's.
  const std::string moves = node_.run_dir + "/migrate";
  Status st = MakeDirs(moves, 0711);
  if (st.ok() && chmod(moves.c_str(), 0711) != 0) st = Status::Errno("chmod " + moves);
  if (!st.ok()) return done(st);
  const pid_t pid = p.pid;
  const std::string gpid = p.gpid;
  ArrivalConfig c;
  c.image_dir = moves + "/home-in-" + std::to_string(pid);
  c.roam_path = node_.roam_path;
  c.control_socket = node_.cfg.control_socket;
  c.faults = node_.faults;
  c.addresses = &node_.addresses;
  arrivals_[gpid] = p.remote->MoveHome(
      node_.name(), node_.AddressOf(node_.name()), *node_.engine, std::move(c),
      [this, gpid, done](Result<pb::MigrationFigures> r) {
        arrivals_.erase(gpid);
        done(std::move(r));
      },
      [this, pid](std::vector<int> signals) { CameHome(pid, signals); });
}

void HomeRole::CameHome(pid_t pid, const std::vector<int>& held_signals) {
  auto it = home_.find(pid);
  if (it == home_.end()) return;
  HomeProcess& p = it->second;
  // The RemoteRun is over (its lambdas keep it alive until they return).
  asio::post(node_.io, [r = std::move(p.remote)] {});
  p.where = node_.name();
  p.stats.set_state("running");
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {  // ended at once: nothing to follow
    spdlog::warn("{}: pidfd_open after coming home: {}", p.gpid, strerror(errno));
    EndRecord(pid);
    return;
  }
  p.pidfd = std::make_unique<asio::posix::stream_descriptor>(node_.io, pidfd);
  Watch(pid);
  for (int sig : held_signals) ::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0);
}

// ---- roam migrate on a terminal: how far it has come ------------------------------------

void HomeRole::MoveProgressOf(const std::string& gpid, const pb::Credentials& requester, ProgressDone done) {
  std::string home;
  pid_t pid = 0;
  if (!SplitGpid(gpid, &home, &pid)) return done(Status::Error(StatusCode::kInvalid, "bad GPID '" + gpid + "'"));
  if (home != node_.name()) {
    pb::LinkRequest req;
    *req.mutable_requester() = requester;
    req.mutable_move_progress()->set_gpid(gpid);
    return node_.AskNode(home, req, [done, home](Result<pb::LinkReply> r) {
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

void HomeRole::Lock(const std::string& gpid, bool lock, const pb::Credentials& requester,
                    std::function<void(const std::string& error)> done) {
  std::string home;
  pid_t pid = 0;
  if (!SplitGpid(gpid, &home, &pid)) return done("bad GPID '" + gpid + "' (expected NODE:PID, e.g. n1:4242)");
  if (home != node_.name()) {
    pb::LinkRequest req;
    *req.mutable_requester() = requester;
    req.mutable_lock()->set_gpid(gpid);
    req.mutable_lock()->set_lock(lock);
    return node_.AskNode(home, req, [done, home](Result<pb::LinkReply> r) {
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

// ---- a process coming home: its image --------------------------------------------------

bool HomeRole::AcceptArrival(std::shared_ptr<LinkSession> link, const std::string& peer, const pb::MoveIn& req) {
  auto a = arrivals_.find(req.gpid());
  if (a == arrivals_.end()) return false;
  spdlog::info("{}: image coming home from {}", req.gpid(), peer);
  std::shared_ptr<HomeArrival> arrival = a->second;
  arrival->AcceptSource(link, req, node_.name());
  return true;
}

}  // namespace roam
