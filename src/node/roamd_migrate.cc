// Moves (docs/MIGRATION.md, proto/migrate.proto): `roam migrate` at the
// home, which arbitrates; the source's side (MigrationOut) and the target's
// side (MigrationIn), started here from their link requests.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <fmt/format.h>

#include "node/roamd.h"

namespace roam {

namespace {

constexpr auto kForwardedMoveTimeout = std::chrono::seconds(330);

void Reply(const std::shared_ptr<LinkChannel>& link, pb::LinkReply reply) {
  pb::LinkFrame f;
  *f.mutable_reply() = std::move(reply);
  link->Send(f);
}

}  // namespace

// ---- roam migrate: at the home ---------------------------------------------------------

void Roamd::Migrate(const std::string& gpid, const std::string& to, const pb::Credentials& requester, MoveDone done) {
  std::string home;
  pid_t pid = 0;
  if (!SplitGpid(gpid, &home, &pid)) return done(Status::Error("bad GPID '" + gpid + "' (expected NODE:PID, e.g. n1:4242)"));
  if (home == swim_->name()) return MigrateHere(pid, to, requester, std::move(done));
  auto it = swim_->members().find(home);
  if (it == swim_->members().end()) return done(Status::Error("no node named " + home));
  if (it->second.state != pb::ALIVE) {
    return done(Status::Error("home node " + home + " is " + MemberStateName(it->second.state)));
  }
  pb::LinkRequest req;
  *req.mutable_requester() = requester;
  req.mutable_migrate()->set_gpid(gpid);
  req.mutable_migrate()->set_to(to);
  AskNode(
      home, req,
      [done, home](Result<pb::LinkReply> r) {
        if (!r.ok()) return done(Status::Error("cannot reach " + home + ": " + r.status().message()));
        if (!r->error().empty()) return done(Status::Error(r->error()));
        done(r->migration());
      },
      kForwardedMoveTimeout);
}

std::string Roamd::ChooseTarget(const HomeProcess& p, const std::string& to, std::string* error) const {
  const std::string& self = swim_->name();
  if (to == "home" || to == self) {
    *error = "moving " + p.gpid + " back to its home node " + self + " is not supported yet";
    return "";
  }
  if (to == "best") {
    std::string ignored;
    for (const std::string& n : Candidates("", false, &ignored)) {
      if (n != self && n != p.where) return n;
    }
    *error = "no other node can take " + p.gpid;
    return "";
  }
  if (to == p.where) {
    *error = p.gpid + " already runs on " + to;
    return "";
  }
  std::vector<std::string> c = Candidates(to, false, error);
  return c.empty() ? "" : c.front();
}

void Roamd::MigrateHere(pid_t pid, const std::string& to, const pb::Credentials& requester, MoveDone done) {
  const std::string gpid = swim_->name() + ":" + std::to_string(pid);
  auto it = home_.find(pid);
  if (it == home_.end()) return done(Status::Error("no process " + gpid));
  HomeProcess& p = it->second;
  // The MOSIX rule: whoever may kill it may move it.
  if (requester.uid() != 0 && requester.uid() != p.creds.uid()) {
    return done(Status::Error(gpid + " belongs to another user"));
  }
  if (p.lock) return done(Status::Error(gpid + " is locked to its home (roam run --lock; roam unlock)"));
  if (!p.remote) {
    return done(Status::Error(gpid + " runs at its home node; moving a process out of its home is not supported yet"));
  }
  if (p.remote->moving()) return done(Status::Error(gpid + " is already moving"));
  if (p.spawn.spec().tty()) return done(Status::Error(gpid + " has a terminal (roam run -t): terminals cannot move yet"));
  std::string error;
  const std::string target = ChooseTarget(p, to, &error);
  if (target.empty()) return done(Status::Error(error));
  const std::string address = AddressOf(target);
  spdlog::info("{}: move {} -> {} asked by {}", gpid, p.where, target, requester.user());
  pb::LinkRequest adopt;
  *adopt.mutable_requester() = requester;
  *adopt.mutable_adopt() = p.spawn;
  adopt.set_move_rss_bytes(p.stats.rss_bytes());
  ConnectLink(io_, address, link_id_,
              [this, pid, target, address, adopt, done](Result<std::shared_ptr<LinkChannel>> r, const std::string&) {
                if (!r.ok()) return done(Status::Error("cannot reach " + target + ": " + r.status().message()));
                std::shared_ptr<LinkChannel> link = *r;
                link->set_handlers(
                    [this, pid, target, address, done, link](pb::LinkFrame& f) {
                      if (!f.has_reply()) return link->Close("expected a reply", false);
                      if (!f.reply().error().empty()) {
                        link->set_handlers(nullptr, nullptr);
                        link->Close("refused", false);
                        return done(Status::Error(f.reply().error()));
                      }
                      auto it = home_.find(pid);
                      if (it == home_.end() || !it->second.remote || it->second.remote->moving()) {
                        link->Close("process gone", false);
                        return done(Status::Error("the process ended before it could move"));
                      }
                      it->second.remote->Move(target, address, link, faults_, done);
                    },
                    [done, target](const std::string& why) {
                      done(Status::Error("lost " + target + " before the move: " + why));
                    });
                pb::LinkFrame req;
                *req.mutable_request() = adopt;
                link->Send(req);
              });
}

// ---- the target's side -----------------------------------------------------------------

void Roamd::StartAdopt(std::shared_ptr<LinkChannel> link, const std::string& peer, const pb::SpawnRequest& req,
                       uint64_t rss_bytes) {
  auto refuse = [&](const std::string& why) {
    pb::LinkReply reply;
    reply.set_error(why);
    Reply(link, std::move(reply));
    link->Close("refused");
  };
  if (!sampler_.accepts_guests()) return refuse("node " + swim_->name() + " refuses guests (blocked)");
  if (req.home() != peer || req.gpid() != peer + ":" + std::to_string(req.pid())) {
    return refuse("adopt request from " + peer + " for " + req.gpid());
  }
  const pid_t pid = static_cast<pid_t>(req.pid());
  if (pid <= 0 || guests_.count(pid) || incoming_.count(req.gpid()) || ::kill(pid, 0) == 0) {
    return refuse("pid " + std::to_string(req.pid()) + " is taken on " + swim_->name());
  }
  if (last_load_.mem_total() != 0 && rss_bytes > last_load_.mem_free()) {
    return refuse(fmt::format("node {} has no room for {}: it uses {:.0f} MiB, {:.0f} MiB are free", swim_->name(),
                              req.gpid(), rss_bytes / 1048576.0, last_load_.mem_free() / 1048576.0));
  }
  if (access(req.spec().cwd().c_str(), X_OK) != 0) {
    return refuse("its working directory " + req.spec().cwd() + " does not exist on " + swim_->name());
  }
  auto in = std::make_shared<MigrationIn>(io_, *engine_, req, link, run_dir_ + "/migrate/in-" + std::to_string(pid),
                                          faults_);
  incoming_[req.gpid()] = in;
  const std::string gpid = req.gpid();
  in->Start([this](std::shared_ptr<GuestProcess> guest) { AdoptGuest(guest); },
            [this, gpid] { incoming_.erase(gpid); });
  Reply(link, pb::LinkReply());
}

void Roamd::StartMoveIn(std::shared_ptr<LinkChannel> link, const std::string& peer, const pb::MoveIn& req) {
  auto it = incoming_.find(req.gpid());
  if (it == incoming_.end() || it->second->has_source()) {
    pb::LinkReply reply;
    reply.set_error("no move of " + req.gpid() + " is expected on " + swim_->name());
    Reply(link, std::move(reply));
    return link->Close("refused");
  }
  spdlog::info("{}: image arriving from {}", req.gpid(), peer);
  it->second->AcceptSource(link);
}

// ---- the source's side -----------------------------------------------------------------

void Roamd::StartMoveOut(std::shared_ptr<GuestProcess> guest, const pb::MoveOut& order) {
  const pid_t pid = guest->pid();
  if (outgoing_.count(pid)) return;
  auto out = std::make_shared<MigrationOut>(io_, *engine_, link_id_, guest,
                                            run_dir_ + "/migrate/out-" + std::to_string(pid), faults_);
  outgoing_[pid] = out;
  out->Start(order, [this, pid] {
    outgoing_.erase(pid);
    ReapChildren();  // whatever exited while the engine held it
  });
}

}  // namespace roam
