#include "node/migrator.h"

#include <fmt/format.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "common/file_util.h"
#include "common/proc_stat.h"
#include "wire/reply.h"

namespace roam {

namespace {

constexpr int kPidFreeAttempts = 150;  // x 20 ms

// A process of this roamd's own on its way out: a staged root or seed of a
// move that just failed here, killed by the engine and reaped a moment later.
bool OurLeftover(pid_t pid) {
  Result<std::string> text = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  ProcStat ps;
  return text.ok() && ParseProcStat(*text, &ps) && ps.ppid == getpid();
}

}  // namespace

// ---- the target's side -----------------------------------------------------------------

void Migrator::StartAdopt(std::shared_ptr<LinkSession> link, const std::string& peer, const pb::SpawnRequest& req,
                          uint64_t rss_bytes, double demand, double balance_limit, int attempt) {
  auto refuse = [&](StatusCode code, const std::string& why) {
    pb::LinkReply reply;
    SetReplyError(&reply, Status::Error(code, why));
    SendReply(link, std::move(reply));
    link->Close("refused");
  };
  const std::string& self = node_.name();
  if (!node_.sampler.accepts_guests())
    return refuse(StatusCode::kRefused, "node " + self + " refuses guests (blocked)");
  if (req.home() != peer || req.gpid() != peer + ":" + std::to_string(req.pid())) {
    return refuse(StatusCode::kPermission, "adopt request from " + peer + " for " + req.gpid());
  }
  const pid_t pid = static_cast<pid_t>(req.pid());
  if (pid <= 0 || guests_.Has(pid) || incoming_.count(req.gpid()) || ::kill(pid, 0) == 0) {
    // Moving straight back: the copy this node just gave away may still be
    // on its way out (killed after the commit, reaped a moment later); or a
    // move here just failed and its staged root is still being killed.
    // Wait for it, a little, rather than refuse.
    if (pid > 0 && attempt < kPidFreeAttempts &&
        (outgoing_.count(pid) || guests_.Has(pid) || incoming_.count(req.gpid()) || OurLeftover(pid))) {
      auto timer = std::make_shared<asio::steady_timer>(node_.io, std::chrono::milliseconds(20));
      timer->async_wait([this, timer, link, peer, req, rss_bytes, demand, balance_limit, attempt](asio::error_code) {
        StartAdopt(link, peer, req, rss_bytes, demand, balance_limit, attempt + 1);
      });
      return;
    }
    return refuse(StatusCode::kBusy, "pid " + std::to_string(req.pid()) + " is taken on " + self);
  }
  const pb::LoadVector& load = node_.last_load;
  if (load.mem_total() != 0) {
    // Room for it, beside what other moves here bring, above the floor that
    // ushering keeps (else it would be moved away again at once).
    uint64_t promised = static_cast<uint64_t>(std::max<int64_t>(arrived_mem_.mem(self, node_.last_sample_ms), 0));
    for (const auto& [g, move] : incoming_) promised += move.rss_bytes;
    const uint64_t floor = admission_.memory_floor();
    if (rss_bytes + promised + floor > load.mem_free()) {
      return refuse(
          StatusCode::kNoRoom,
          fmt::format("node {} has no room for {}: it uses {:.0f} MiB, {:.0f} MiB are free, {:.0f} MiB promised "
                      "to moves arriving, {:.0f} MiB kept free",
                      self, req.gpid(), rss_bytes / 1048576.0, load.mem_free() / 1048576.0, promised / 1048576.0,
                      floor / 1048576.0));
    }
  }
  if (access(req.spec().cwd().c_str(), X_OK) != 0) {
    return refuse(StatusCode::kMismatch, "its working directory " + req.spec().cwd() + " does not exist on " + self);
  }
  if (Status st = admission_.balanced(req.gpid(), demand, balance_limit, rss_bytes); !st.ok()) {
    return refuse(st.code(), st.message());
  }
  auto in = std::make_shared<MigrationIn>(node_.io, *node_.engine, req, link,
                                          node_.run_dir + "/migrate/in-" + std::to_string(pid), node_.faults,
                                          &node_.addresses);
  incoming_[req.gpid()] = IncomingMove{in, rss_bytes};
  const std::string gpid = req.gpid();
  in->Start(
      [this, rss_bytes](std::shared_ptr<GuestProcess> guest) {
        arrived_mem_.Add(NodeContext::Now(), node_.name(), 0, static_cast<int64_t>(rss_bytes));
        guests_.Adopt(guest);
      },
      [this, gpid] { incoming_.erase(gpid); });
  SendReply(link, pb::LinkReply());
}

void Migrator::StartMoveIn(std::shared_ptr<LinkSession> link, const std::string& peer, const pb::MoveIn& req) {
  auto it = incoming_.find(req.gpid());
  if (it == incoming_.end() || it->second.in->has_source()) {
    pb::LinkReply reply;
    SetReplyError(&reply,
                  Status::Error(StatusCode::kInvalid, "no move of " + req.gpid() + " is expected on " + node_.name()));
    SendReply(link, std::move(reply));
    return link->Close("refused");
  }
  spdlog::info("{}: image arriving from {}", req.gpid(), peer);
  it->second.in->AcceptSource(link, req, node_.name());
}

// ---- the source's side -----------------------------------------------------------------

void Migrator::StartMoveOut(std::shared_ptr<GuestProcess> guest, const pb::MoveOut& order) {
  const pid_t pid = guest->pid();
  if (outgoing_.count(pid)) {
    // The home already gave up on the last move (its target refused) and
    // asks for the next while this node still resumes the process: the
    // order waits for the resume.
    next_move_out_[pid] = {guest, order};
    return;
  }
  auto out = std::make_shared<MigrationOut>(node_.io, *node_.engine, *node_.links, guest, node_.faults, node_.codec,
                                            &node_.addresses);
  outgoing_[pid] = out;
  out->Start(order, [this, pid] {
    outgoing_.erase(pid);
    node_.reaper.Reap();  // whatever exited while the engine held it
    auto next = next_move_out_.find(pid);
    if (next == next_move_out_.end()) return;
    auto [guest, order] = std::move(next->second);
    next_move_out_.erase(next);
    if (guests_.Is(pid, guest)) StartMoveOut(guest, order);
  });
}

}  // namespace roam
