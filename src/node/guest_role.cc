#include "node/guest_role.h"

#include <spdlog/spdlog.h>

#include "node/guest_spawn.h"

namespace roam {

void GuestRole::Start(std::shared_ptr<LinkSession> link, const std::string& peer, const pb::SpawnRequest& req) {
  auto refuse = [&](const std::string& why, int code) {
    pb::LinkReply reply;
    reply.set_error(why);
    reply.set_exit_code(code);
    SendReply(link, std::move(reply));
    link->Close("refused");
  };
  if (!node_.sampler.accepts_guests()) return refuse("node " + node_.name() + " refuses guests (blocked)", 255);
  // A home speaks only for its own processes.
  if (req.home() != peer || req.gpid() != peer + ":" + std::to_string(req.pid())) {
    return refuse("spawn request from " + peer + " for " + req.gpid(), 255);
  }
  if (req.pid() == 0 || guests_.count(static_cast<pid_t>(req.pid()))) {
    return refuse("pid " + std::to_string(req.pid()) + " is taken on " + node_.name(), 255);
  }
  // Its own address is up before it starts (it may bind to it at once).
  if (!req.spec().address().empty()) {
    if (Status st = node_.addresses.Hold(req.gpid(), req.spec().address()); !st.ok()) return refuse(st.message(), 255);
  }
  SpawnedGuest spawned;
  SpawnFailure failure;
  if (!SpawnGuest(req, node_.name(), &spawned, &failure, node_.addresses.cgroup_fd(req.gpid()))) {
    node_.addresses.Release(req.gpid());
    spdlog::info("{}: not started: {}", req.gpid(), failure.message);
    return refuse(failure.message, failure.exit_code);
  }
  SendReply(link, pb::LinkReply());
  auto guest = std::make_shared<GuestProcess>(node_.io, link, req, spawned);
  guest->set_started_here();
  spdlog::info("{} started here as {} (uid {})", req.gpid(), spawned.pid, req.creds().uid());
  Adopt(guest);
}

void GuestRole::Adopt(std::shared_ptr<GuestProcess> guest) {
  const pid_t pid = guest->pid();
  guests_[pid] = guest;
  std::weak_ptr<GuestProcess> weak = guest;
  guest->set_move_order_handler([this, weak](const pb::MoveOut& order) {
    if (auto g = weak.lock()) on_move_order_(g, order);
  });
  node_.reaper.Watch(
      pid,
      [weak](int status) {
        if (auto g = weak.lock()) g->Exited(status);
      },
      [weak] {
        auto g = weak.lock();
        return g && g->held();
      });
  guest->set_on_root_exit([this, pid, weak] {
    auto g = weak.lock();
    if (!g || !Is(pid, g)) return;
    guests_.erase(pid);
    remnants_.insert(g);
  });
  guest->Start([this, pid, weak, gpid = guest->gpid()] {
    node_.addresses.Release(gpid);  // unless it left with it (a move)
    auto g = weak.lock();
    if (g && remnants_.erase(g)) return;  // its PID may be another guest's by now
    guests_.erase(pid);
    node_.reaper.Forget(pid);
  });
}

void GuestRole::HomeLost(const std::string& node, const std::string& state) {
  std::vector<std::shared_ptr<GuestProcess>> lost;
  for (auto& [pid, g] : guests_) {
    if (g->home() == node) lost.push_back(g);
  }
  for (auto& g : remnants_) {
    if (g->home() == node) lost.push_back(g);
  }
  for (auto& g : lost) {
    spdlog::warn("{}: its home {} is {}; killing it", g->gpid(), node, state);
    g->KillAll();
  }
}

void GuestRole::KillAll() {
  for (auto& [pid, g] : guests_) g->KillAll();
  for (auto& g : remnants_) g->KillAll();
}

bool GuestRole::Is(pid_t pid, const std::shared_ptr<GuestProcess>& guest) const {
  auto it = guests_.find(pid);
  return it != guests_.end() && it->second == guest;
}

std::vector<std::string> GuestRole::gpids() const {
  std::vector<std::string> out;
  for (const auto& [pid, g] : guests_) out.push_back(g->gpid());
  return out;
}

std::vector<std::string> GuestRole::remnant_gpids() const {
  std::vector<std::string> out;
  for (const auto& g : remnants_) out.push_back(g->gpid());
  return out;
}

std::vector<std::pair<pid_t, std::string>> GuestRole::Settled() const {
  std::vector<std::pair<pid_t, std::string>> out;
  for (const auto& [pid, g] : guests_) {
    if (!g->held()) out.emplace_back(pid, g->gpid());
  }
  return out;
}

}  // namespace roam
