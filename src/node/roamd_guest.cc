// The guest role of roamd: node links accepted from other roamds and the
// processes they start here (reaped through the ChildReaper).
#include <signal.h>
#include <spdlog/spdlog.h>

#include "node/guest_spawn.h"
#include "wire/reply.h"
#include "node/roamd.h"

namespace roam {

namespace {

void Reply(const std::shared_ptr<LinkSession>& link, pb::LinkReply reply) {
  pb::LinkFrame f;
  *f.mutable_reply() = std::move(reply);
  link->Send(f);
}

}  // namespace

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
    Reply(link, std::move(r));
    link->Close("answered");
  };
  switch (req.op_case()) {
    case pb::LinkRequest::kSpawn:
      return StartGuest(link, peer, req.spawn());
    case pb::LinkRequest::kPs:
      *reply.mutable_ps() = LocalPs(req.requester());
      break;
    case pb::LinkRequest::kAdopt:
      return StartAdopt(link, peer, req.adopt(), req.move_rss_bytes(), req.move_demand(), req.balance_limit());
    case pb::LinkRequest::kMoveIn:
      return StartMoveIn(link, peer, req.move_in());
    case pb::LinkRequest::kMigrate:  // to the home; the link stays open until the move is done
      return Migrate(req.migrate().gpid(), req.migrate().to(), req.requester(),
                     ReplyWith<pb::LinkReply, pb::MigrationFigures>(
                         answer, [](pb::LinkReply& m, const pb::MigrationFigures& v) { *m.mutable_migration() = v; }));
    case pb::LinkRequest::kMoveProgress:
      return MoveProgressOf(req.move_progress().gpid(), req.requester(),
                            ReplyWith<pb::LinkReply, pb::MoveProgress>(
                                answer, [](pb::LinkReply& m, const pb::MoveProgress& v) { *m.mutable_move_progress() = v; }));
    case pb::LinkRequest::kLock:
      return Lock(req.lock().gpid(), req.lock().lock(), req.requester(), ReplyError<pb::LinkReply>(answer));
    case pb::LinkRequest::kNodeAdmin:
      return NodeAdmin(req.node_admin(), req.requester(),
                       ReplyWith<pb::LinkReply, pb::NodeAdminReply>(
                           answer, [](pb::LinkReply& m, const pb::NodeAdminReply& v) { *m.mutable_node_admin() = v; }));
    case pb::LinkRequest::kKill: {
      const std::string& gpid = req.kill().gpid();
      const std::string prefix = swim_->name() + ":";
      if (gpid.rfind(prefix, 0) != 0) {
        reply.set_error(gpid + " is not a process of " + swim_->name());
        break;
      }
      pid_t pid = static_cast<pid_t>(std::strtol(gpid.c_str() + prefix.size(), nullptr, 10));
      reply.set_error(KillHere(pid, req.kill().signo(), req.requester()));
      break;
    }
    default:
      reply.set_error("unknown link request (is " + peer + " newer than this roamd?)");
  }
  Reply(link, std::move(reply));
  link->Close("answered");
}

void Roamd::StartGuest(std::shared_ptr<LinkSession> link, const std::string& peer, const pb::SpawnRequest& req) {
  auto refuse = [&](const std::string& why, int code) {
    pb::LinkReply reply;
    reply.set_error(why);
    reply.set_exit_code(code);
    Reply(link, std::move(reply));
    link->Close("refused");
  };
  if (!sampler_.accepts_guests()) return refuse("node " + swim_->name() + " refuses guests (blocked)", 255);
  // A home speaks only for its own processes.
  if (req.home() != peer || req.gpid() != peer + ":" + std::to_string(req.pid())) {
    return refuse("spawn request from " + peer + " for " + req.gpid(), 255);
  }
  if (req.pid() == 0 || guests_.count(static_cast<pid_t>(req.pid()))) {
    return refuse("pid " + std::to_string(req.pid()) + " is taken on " + swim_->name(), 255);
  }
  // Its own address is up before it starts (it may bind to it at once).
  if (!req.spec().address().empty()) {
    if (Status st = addresses_.Hold(req.gpid(), req.spec().address()); !st.ok()) return refuse(st.message(), 255);
  }
  SpawnedGuest spawned;
  SpawnFailure failure;
  if (!SpawnGuest(req, swim_->name(), &spawned, &failure, addresses_.cgroup_fd(req.gpid()))) {
    addresses_.Release(req.gpid());
    spdlog::info("{}: not started: {}", req.gpid(), failure.message);
    return refuse(failure.message, failure.exit_code);
  }
  Reply(link, pb::LinkReply());
  auto guest = std::make_shared<GuestProcess>(io_, link, req, spawned);
  spdlog::info("{} started here as {} (uid {})", req.gpid(), spawned.pid, req.creds().uid());
  AdoptGuest(guest);
}

void Roamd::AdoptGuest(std::shared_ptr<GuestProcess> guest) {
  const pid_t pid = guest->pid();
  guests_[pid] = guest;
  std::weak_ptr<GuestProcess> weak = guest;
  guest->set_move_order_handler([this, weak](const pb::MoveOut& order) {
    if (auto g = weak.lock()) StartMoveOut(g, order);
  });
  reaper_.Watch(
      pid, [weak](int status) { if (auto g = weak.lock()) g->Exited(status); },
      [weak] {
        auto g = weak.lock();
        return g && g->held();
      });
  guest->Start([this, pid, gpid = guest->gpid()] {
    addresses_.Release(gpid);  // unless it left with it (a move)
    guests_.erase(pid);
    reaper_.Forget(pid);
  });
}

void Roamd::AskNode(const std::string& node, pb::LinkRequest req,
                    std::function<void(Result<pb::LinkReply>)> done, std::chrono::seconds timeout) {
  struct Ask {
    explicit Ask(asio::io_context& io) : timer(io) {}
    asio::steady_timer timer;
    std::function<void(Result<pb::LinkReply>)> done;
    std::shared_ptr<LinkSession> link;
    void Finish(Result<pb::LinkReply> r) {
      if (!done) return;
      auto d = std::move(done);
      done = nullptr;
      timer.cancel();
      if (link) {
        link->set_handlers(nullptr, nullptr);
        link->Close("done", false);
      }
      d(std::move(r));
    }
  };
  auto ask = std::make_shared<Ask>(io_);
  ask->done = std::move(done);
  const std::string address = AddressOf(node);
  if (address.empty()) return ask->Finish(Status::Error(StatusCode::kNotFound, "no node named " + node));
  ask->timer.expires_after(timeout);
  ask->timer.async_wait([ask, node](asio::error_code ec) {
    if (!ec) ask->Finish(Status::Error(StatusCode::kUnavailable, node + " did not answer in time"));
  });
  links_->Open(address,
              [ask, req = std::move(req)](Result<std::shared_ptr<LinkSession>> r, const std::string&) {
                if (!r.ok()) return ask->Finish(Status::Error(StatusCode::kUnavailable, r.status().message()));
                if (!ask->done) return (*r)->Close("late", false);
                ask->link = *r;
                ask->link->set_handlers(
                    [ask](pb::LinkFrame& f) {
                      if (f.has_reply()) return ask->Finish(f.reply());
                      ask->Finish(Status::Error(StatusCode::kInvalid, "unexpected frame"));
                    },
                    [ask](const std::string& why) { ask->Finish(Status::Error(StatusCode::kUnavailable, why)); });
                pb::LinkFrame f;
                *f.mutable_request() = req;
                ask->link->Send(f);
              });
}

}  // namespace roam
