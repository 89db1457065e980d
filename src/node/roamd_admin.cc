// Roamd's node-wide verbs, mosctl's (docs/CLI.md): `roam node block|unblock|
// expel|bring|drain|balance|usher`, on any node of the cluster (forwarded
// to the one named).
#include <spdlog/spdlog.h>

#include "node/roamd.h"

namespace roam {

namespace {

constexpr auto kForwardedAdminTimeout = std::chrono::seconds(3600);  // a drain is many moves

}  // namespace

void Roamd::NodeAdmin(const pb::NodeAdminRequest& req, const pb::Credentials& requester, NodeAdminDone done) {
  if (requester.uid() != 0) return done(Status::Error("administering nodes needs root"));
  if (!req.node().empty() && req.node() != node_.name()) {
    auto it = node_.swim->members().find(req.node());
    if (it == node_.swim->members().end()) return done(Status::Error("no node named " + req.node()));
    if (it->second.state != pb::ALIVE) {
      return done(Status::Error("node " + req.node() + " is " + MemberStateName(it->second.state)));
    }
    pb::LinkRequest fwd;
    *fwd.mutable_requester() = requester;
    *fwd.mutable_node_admin() = req;
    const std::string node = req.node();
    return node_.AskNode(
        node, fwd,
        [this, done, node](Result<pb::LinkReply> r) {
          if (!r.ok()) return done(Status::Error("cannot reach " + node + ": " + r.status().message()));
          if (!r->error().empty()) return done(Status::Error(r->error()));
          if (r->node_admin().has_load()) node_.swim->LearnLoad(r->node_admin().load(), NodeContext::Now());
          done(r->node_admin());
        },
        kForwardedAdminTimeout);
  }
  // Done here: the reply carries this node's vector as it now is.
  done = [this, done = std::move(done)](Result<pb::NodeAdminReply> r) {
    if (r.ok()) {
      PublishLoad();
      *r->mutable_load() = node_.swim->SelfLoad(NodeContext::Now());
    }
    done(std::move(r));
  };
  using V = pb::NodeAdminRequest;
  switch (req.verb()) {
    case V::BLOCK:
    case V::UNBLOCK:
      node_.sampler.set_accepts_guests(req.verb() == V::UNBLOCK);
      node_.draining = false;
      spdlog::info("{} guests", req.verb() == V::BLOCK ? "refusing" : "accepting");
      return done(pb::NodeAdminReply());
    case V::DRAIN:
      node_.sampler.set_accepts_guests(false);
      node_.draining = true;
      PublishLoad();
      spdlog::info("draining: refusing guests and moving the present ones away");
      [[fallthrough]];
    case V::EXPEL: {
      if (req.verb() == V::EXPEL) spdlog::info("expelling guests, asked by {}", requester.user());
      // What a remnant left running cannot move: named, so that whoever
      // empties the node for maintenance knows what still runs there.
      return MoveAll(guests_->gpids(), "best", requester, [this, done = std::move(done)](Result<pb::NodeAdminReply> r) {
        for (const std::string& gpid : guests_->remnant_gpids()) {
          if (!r.ok()) break;
          r->add_failures(gpid + ": has exited; what it left running in the background stays on " + node_.name() +
                          " until its output ends");
        }
        done(std::move(r));
      });
    }
    case V::BALANCE_ON:
    case V::BALANCE_OFF:
      if (!req.policy().empty() && !balancer_->SetPolicy(req.policy())) {
        return done(
            Status::Error(StatusCode::kInvalid, "unknown balancing policy '" + req.policy() + "' (cost or load)"));
      }
      balancer_->SetBalance(req.verb() == V::BALANCE_ON);
      return done(pb::NodeAdminReply());
    case V::USHER_ON:
    case V::USHER_OFF:
      balancer_->SetUsher(req.verb() == V::USHER_ON);
      return done(pb::NodeAdminReply());
    case V::BRING: {
      return MoveAll(home_->Away(), "home", requester, std::move(done));
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
    home_->Migrate(gpid, to, requester, [batch, step, gpid](Result<pb::MigrationFigures> r) {
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

}  // namespace roam
