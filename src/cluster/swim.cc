#include "cluster/swim.h"

#include "cluster/swim_validate.h"

#include <algorithm>
#include <cmath>

namespace roam {

Swim::Swim(const SwimConfig& config, std::string name, std::string address, uint64_t incarnation,
           SwimTransport* transport, uint64_t seed)
    : cfg_(config), self_name_(std::move(name)), transport_(transport), rng_(seed),
      load_stamp_(incarnation * 1000) {
  Member self;
  self.name = self_name_;
  self.address = std::move(address);
  self.incarnation = incarnation;
  self.state = pb::ALIVE;
  members_.emplace(self_name_, std::move(self));
}

// ---- lifecycle -----------------------------------------------------------------

void Swim::Start(int64_t now, bool multicast, std::vector<std::string> static_peers) {
  multicast_ = multicast;
  static_peers_ = std::move(static_peers);
  members_.at(self_name_).state_since_ms = now;
  Broadcast(members_.at(self_name_).ToUpdate());
  // Spread the first probes of a freshly started cluster over one period.
  std::uniform_int_distribution<int64_t> jitter(0, cfg_.probe_interval_ms - 1);
  next_probe_at_ = now + jitter(rng_);
  next_gossip_at_ = now + jitter(rng_);
  next_reconnect_at_ = now + cfg_.reconnect_interval_ms;
  next_announce_at_ = now + cfg_.announce_interval_ms;
  next_join_at_ = now + cfg_.join_retry_ms;
  if (multicast_) transport_->Multicast(NewMessage(pb::SwimMessage::ANNOUNCE));
  for (const auto& p : static_peers_) Announce(p, false);
}

void Swim::Leave(int64_t now) {
  Member& self = members_.at(self_name_);
  SetState(self, pb::LEFT, now);
  pb::SwimMessage msg = NewMessage(pb::SwimMessage::LEAVE);
  *msg.add_updates() = self.ToUpdate();
  for (const auto& [name, m] : members_) {
    if (name != self_name_ && (m.state == pb::ALIVE || m.state == pb::SUSPECT)) transport_->Send(m.address, msg);
  }
  left_ = true;
}

void Swim::Tick(int64_t now) {
  if (left_) return;
  CheckProbe(now);
  if (now >= next_probe_at_) {
    StartProbe(now);
    next_probe_at_ = now + cfg_.probe_interval_ms;
  }
  CheckSuspects(now);
  if (now >= next_gossip_at_) {
    SendGossip(now);
    next_gossip_at_ = now + cfg_.gossip_interval_ms;
  }
  if (now >= next_reconnect_at_) {
    ReconnectDead(now);
    next_reconnect_at_ = now + cfg_.reconnect_interval_ms;
  }
  if (multicast_ && cfg_.announce_interval_ms > 0 && now >= next_announce_at_) {
    transport_->Multicast(NewMessage(pb::SwimMessage::ANNOUNCE));
    next_announce_at_ = now + cfg_.announce_interval_ms;
  }
  if (!static_peers_.empty() && LiveCount() <= 1 && now >= next_join_at_) {
    for (const auto& p : static_peers_) Announce(p, false);
    next_join_at_ = now + cfg_.join_retry_ms;
  }
  for (auto it = relays_.begin(); it != relays_.end();) {
    it = (now - it->second.started_at > cfg_.probe_interval_ms) ? relays_.erase(it) : std::next(it);
  }
  Reap(now);
}

// ---- failure detection -------------------------------------------------------------

void Swim::StartProbe(int64_t now) {
  // Next target in round-robin order over a shuffled list; reshuffle at the end.
  for (int attempts = 0; attempts < 2; ++attempts) {
    while (probe_pos_ < probe_order_.size()) {
      const std::string& name = probe_order_[probe_pos_++];
      auto it = members_.find(name);
      if (it == members_.end() || name == self_name_) continue;
      if (it->second.state != pb::ALIVE && it->second.state != pb::SUSPECT) continue;
      probe_ = Probe{name, next_probe_id_++, now, false};
      pb::SwimMessage ping = NewMessage(pb::SwimMessage::PING);
      ping.set_probe_id(probe_->id);
      SendWithPiggyback(it->second.address, std::move(ping));
      return;
    }
    RebuildProbeOrder();
  }
}

void Swim::RebuildProbeOrder() {
  probe_order_.clear();
  for (const auto& [name, m] : members_) {
    if (name != self_name_ && (m.state == pb::ALIVE || m.state == pb::SUSPECT)) probe_order_.push_back(name);
  }
  std::shuffle(probe_order_.begin(), probe_order_.end(), rng_);
  probe_pos_ = 0;
}

void Swim::CheckProbe(int64_t now) {
  if (!probe_) return;
  auto it = members_.find(probe_->target);
  if (it == members_.end() || (it->second.state != pb::ALIVE && it->second.state != pb::SUSPECT)) {
    probe_.reset();
    return;
  }
  if (!probe_->indirect_sent && now >= probe_->sent_at + cfg_.ping_timeout_ms) {
    probe_->indirect_sent = true;
    for (const Member* helper : RandomLive(cfg_.indirect_checks, probe_->target)) {
      pb::SwimMessage req = NewMessage(pb::SwimMessage::PING_REQ);
      req.set_probe_id(probe_->id);
      req.set_target(probe_->target);
      req.set_target_address(it->second.address);
      SendWithPiggyback(helper->address, std::move(req));
    }
  }
  if (now >= probe_->sent_at + cfg_.probe_interval_ms) {
    if (it->second.state == pb::ALIVE) {
      pb::MemberUpdate u = it->second.ToUpdate();
      u.set_state(pb::SUSPECT);
      ApplyUpdate(u, now);
      // Tell the suspect itself first: if it hears, it refutes at once.
      pb::SwimMessage ping = NewMessage(pb::SwimMessage::PING);
      ping.set_probe_id(next_probe_id_++);
      SendWithPiggyback(it->second.address, std::move(ping));
    }
    probe_.reset();
  }
}

void Swim::CheckSuspects(int64_t now) {
  if (suspects_.empty()) return;
  const int64_t timeout = SuspicionTimeout();
  std::vector<std::string> expired;
  for (const auto& [name, since] : suspects_) {
    if (now >= since + timeout) expired.push_back(name);
  }
  for (const auto& name : expired) {
    pb::MemberUpdate u = members_.at(name).ToUpdate();
    u.set_state(pb::DEAD);
    ApplyUpdate(u, now);
  }
}

int64_t Swim::SuspicionTimeout() const {
  double n = static_cast<double>(std::max<size_t>(LiveCount(), 1));
  return static_cast<int64_t>(cfg_.suspicion_mult * std::max(1.0, std::log10(n)) * cfg_.probe_interval_ms);
}

int Swim::RetransmitLimit() const {
  double n = static_cast<double>(members_.size());
  return static_cast<int>(std::ceil(cfg_.retransmit_mult * std::max(1.0, std::log10(n + 1))));
}

// ---- receiving ---------------------------------------------------------------------

void Swim::Receive(const std::string& from, const pb::SwimMessage& msg, int64_t now) {
  if (left_) return;
  bool sender_was_dead = false;
  if (msg.has_self()) {
    auto it = members_.find(msg.self().name());
    sender_was_dead = it != members_.end() && (it->second.state == pb::DEAD || it->second.state == pb::LEFT);
    ApplyUpdate(msg.self(), now);
  }
  for (const auto& u : msg.updates()) ApplyUpdate(u, now);
  for (const auto& v : msg.loads()) ApplyLoad(v, now);

  switch (msg.kind()) {
    case pb::SwimMessage::PING: {
      pb::SwimMessage ack = NewMessage(pb::SwimMessage::ACK);
      ack.set_probe_id(msg.probe_id());
      ack.set_target(self_name_);
      SendWithPiggyback(from, std::move(ack));
      break;
    }
    case pb::SwimMessage::ACK: {
      if (probe_ && msg.probe_id() == probe_->id && msg.target() == probe_->target) {
        probe_.reset();
      } else if (auto r = relays_.find(msg.probe_id()); r != relays_.end()) {
        pb::SwimMessage fwd = NewMessage(pb::SwimMessage::ACK);
        fwd.set_probe_id(r->second.origin_id);
        fwd.set_target(msg.target());
        SendWithPiggyback(r->second.origin_address, std::move(fwd));
        relays_.erase(r);
      }
      break;
    }
    case pb::SwimMessage::PING_REQ: {
      uint32_t id = next_probe_id_++;
      relays_[id] = Relay{from, msg.probe_id(), now};
      pb::SwimMessage ping = NewMessage(pb::SwimMessage::PING);
      ping.set_probe_id(id);
      ping.set_origin(msg.self().name());
      SendWithPiggyback(msg.target_address(), std::move(ping));
      break;
    }
    case pb::SwimMessage::ANNOUNCE: {
      // A join (a newcomer, or a restarted member we hold dead) gets the whole
      // table; a reconnect attempt gets the short push-pull. Periodic
      // announces of members we already know cost nothing.
      const std::string& sender = msg.self().name();
      if (msg.sync_reply_wanted()) {
        SendPushPull(from, sender, now);
      } else if (members_.at(sender).state_since_ms == now || (sender_was_dead && SyncAllowed(sender, now))) {
        SendSync(from, now);
      }
      return;
    }
    case pb::SwimMessage::SYNC:
      if (msg.sync_reply_wanted()) SendPushPull(from, msg.self().name(), now, /*reply_wanted=*/false);
      return;
    default:
      break;
  }
  // A member we believed dead is talking to us: push-pull so both can refute.
  if (sender_was_dead && msg.kind() != pb::SwimMessage::LEAVE && SyncAllowed(msg.self().name(), now)) {
    SendPushPull(from, msg.self().name(), now);
  }
}

bool Swim::SyncAllowed(const std::string& member, int64_t now) {
  auto& last = last_sync_to_[member];
  if (last != 0 && now - last < cfg_.reconnect_interval_ms) return false;
  last = now;
  return true;
}

void Swim::ApplyUpdate(const pb::MemberUpdate& u, int64_t now) {
  if (u.name() == self_name_) {
    Member& self = members_.at(self_name_);
    if (self.state == pb::LEFT) return;
    bool accused = u.state() != pb::ALIVE && u.incarnation() >= self.incarnation;
    bool outdated = u.state() == pb::ALIVE && u.incarnation() > self.incarnation;
    if (accused || outdated) Refute(u.incarnation());
    return;
  }
  auto it = members_.find(u.name());
  if (it == members_.end()) {
    Member& m = Insert(u, now);
    // A newcomer is probed within this round, at a random place in it.
    if (m.state == pb::ALIVE && !probe_order_.empty()) {
      std::uniform_int_distribution<size_t> at(probe_pos_, probe_order_.size());
      probe_order_.insert(probe_order_.begin() + static_cast<long>(at(rng_)), m.name);
    }
    Broadcast(u);
    if (on_state_change) on_state_change(pb::MEMBER_STATE_UNSPECIFIED, m);
    return;
  }
  Member& m = it->second;
  if (!Supersedes(u, m)) return;
  m.incarnation = u.incarnation();
  if (!u.address().empty()) m.address = u.address();
  SetState(m, u.state(), now);
  Broadcast(m.ToUpdate());
}

Member& Swim::Insert(const pb::MemberUpdate& u, int64_t now) {
  Member m;
  m.name = u.name();
  m.address = u.address();
  m.incarnation = u.incarnation();
  m.state = u.state();
  m.state_since_ms = now;
  Member& in = members_.emplace(u.name(), std::move(m)).first->second;
  TrackState(in, pb::MEMBER_STATE_UNSPECIFIED);
  return in;
}

void Swim::Seed(const std::vector<pb::MemberUpdate>& snapshot, int64_t now) {
  for (const auto& u : snapshot) {
    if (!members_.count(u.name())) Insert(u, now);
  }
  probe_order_.clear();
  probe_pos_ = 0;
}

void Swim::Refute(uint64_t accused_incarnation) {
  Member& self = members_.at(self_name_);
  // Validated input stays below kMaxIncarnation; a refutation that would
  // reach it could not travel, so it is not made.
  if (std::max(self.incarnation, accused_incarnation) + 1 >= kMaxIncarnation) return;
  self.incarnation = std::max(self.incarnation, accused_incarnation) + 1;
  load_stamp_ = std::max(load_stamp_, self.incarnation * 1000);
  Broadcast(self.ToUpdate());
}

void Swim::SetState(Member& m, MemberState s, int64_t now) {
  if (m.state == s) return;
  MemberState old = m.state;
  m.state = s;
  m.state_since_ms = now;
  TrackState(m, old);
  if (on_state_change) on_state_change(old, m);
}

void Swim::TrackState(const Member& m, MemberState old) {
  auto live = [](MemberState s) { return s == pb::ALIVE || s == pb::SUSPECT; };
  if (live(old)) --live_count_;
  if (live(m.state)) ++live_count_;
  suspects_.erase(m.name);
  down_.erase(m.name);
  if (m.state == pb::SUSPECT) suspects_[m.name] = m.state_since_ms;
  if (m.state == pb::DEAD || m.state == pb::LEFT) down_[m.name] = m.state_since_ms;
}

void Swim::ApplyLoad(const pb::LoadVector& v, int64_t now) {
  auto it = members_.find(v.node());
  if (it == members_.end() || v.node() == self_name_) return;
  Member& m = it->second;
  if (m.load && m.load->vector.stamp() >= v.stamp()) return;
  m.load = std::make_unique<LoadRecord>(LoadRecord{v, now});
}

void Swim::SetSelfLoad(const pb::LoadVector& v, int64_t now) {
  Member& self = members_.at(self_name_);
  pb::LoadVector mine = v;
  mine.set_node(self_name_);
  mine.set_stamp(++load_stamp_);
  mine.set_age_ms(0);
  self.load = std::make_unique<LoadRecord>(LoadRecord{mine, now});
}

// ---- sending -------------------------------------------------------------------------

pb::SwimMessage Swim::NewMessage(pb::SwimMessage::Kind kind) {
  pb::SwimMessage msg;
  msg.set_kind(kind);
  *msg.mutable_self() = members_.at(self_name_).ToUpdate();
  return msg;
}

void Swim::Broadcast(const pb::MemberUpdate& u) { broadcasts_[u.name()] = Pending{u, 0}; }

void Swim::SendWithPiggyback(const std::string& address, pb::SwimMessage msg) {
  if (!broadcasts_.empty()) {
    // Fewest transmissions first: fresh news travels before old news.
    std::vector<std::pair<int, std::string>> order;
    order.reserve(broadcasts_.size());
    for (const auto& [name, p] : broadcasts_) order.emplace_back(p.transmits, name);
    size_t n = std::min<size_t>(order.size(), static_cast<size_t>(cfg_.max_piggyback));
    std::partial_sort(order.begin(), order.begin() + static_cast<long>(n), order.end());
    const int limit = RetransmitLimit();
    for (size_t i = 0; i < n; ++i) {
      Pending& p = broadcasts_.at(order[i].second);
      *msg.add_updates() = p.update;
      if (++p.transmits >= limit) broadcasts_.erase(order[i].second);
    }
  }
  transport_->Send(address, msg);
}

pb::LoadVector Swim::LoadForWire(const Member& m, int64_t now) const {
  pb::LoadVector v = m.load->vector;
  v.set_age_ms(m.load->AgeAt(now));
  return v;
}

void Swim::SendGossip(int64_t now) {
  std::vector<const Member*> targets = RandomLive(cfg_.gossip_fanout, "");
  if (targets.empty()) return;
  const Member& self = members_.at(self_name_);
  for (const Member* t : targets) {
    // Own vector first, then a random sample of the others we know.
    pb::SwimMessage msg = NewMessage(pb::SwimMessage::GOSSIP);
    if (self.load) *msg.add_loads() = LoadForWire(self, now);
    for (const Member* m : RandomLive(cfg_.max_loads_per_gossip - 1, t->name)) {
      if (m->load) *msg.add_loads() = LoadForWire(*m, now);
    }
    SendWithPiggyback(t->address, std::move(msg));
  }
}

void Swim::SendSync(const std::string& address, int64_t now) {
  pb::SwimMessage page = NewMessage(pb::SwimMessage::SYNC);
  auto flush = [&] {
    transport_->Send(address, page);
    page = NewMessage(pb::SwimMessage::SYNC);
  };
  int in_page = 0;
  for (const auto& [name, m] : members_) {
    *page.add_updates() = m.ToUpdate();
    if (m.load) *page.add_loads() = LoadForWire(m, now);
    if (++in_page == cfg_.sync_page_members) {
      flush();
      in_page = 0;
    }
  }
  if (in_page > 0) flush();
}

void Swim::SendPushPull(const std::string& address, const std::string& peer, int64_t now, bool reply_wanted) {
  // Only what lets the two sides correct each other: our own record (in
  // `self`) and what we hold about the peer, which it refutes if DEAD.
  pb::SwimMessage msg = NewMessage(pb::SwimMessage::SYNC);
  msg.set_sync_reply_wanted(reply_wanted);
  if (auto it = members_.find(peer); it != members_.end() && peer != self_name_) {
    *msg.add_updates() = it->second.ToUpdate();
  }
  const Member& self = members_.at(self_name_);
  if (self.load) *msg.add_loads() = LoadForWire(self, now);
  transport_->Send(address, msg);
}

void Swim::Announce(const std::string& address, bool reply_wanted) {
  pb::SwimMessage msg = NewMessage(pb::SwimMessage::ANNOUNCE);
  msg.set_sync_reply_wanted(reply_wanted);
  transport_->Send(address, msg);
}

void Swim::ReconnectDead(int64_t now) {
  std::vector<const Member*> dead;
  for (const auto& [name, since] : down_) {
    const Member& m = members_.at(name);
    if (m.state == pb::DEAD) dead.push_back(&m);
  }
  if (dead.empty()) return;
  std::uniform_int_distribution<size_t> pick(0, dead.size() - 1);
  Announce(dead[pick(rng_)]->address, true);
}

void Swim::Reap(int64_t now) {
  for (auto it = down_.begin(); it != down_.end();) {
    if (now - it->second <= cfg_.dead_reap_ms || it->first == self_name_) {
      ++it;
      continue;
    }
    members_.erase(it->first);
    last_sync_to_.erase(it->first);
    it = down_.erase(it);
  }
}

std::vector<const Member*> Swim::RandomLive(int k, const std::string& exclude) {
  std::vector<const Member*> out;
  if (k <= 0) return out;
  if (probe_order_.empty()) RebuildProbeOrder();
  const size_t n = probe_order_.size();
  if (n <= static_cast<size_t>(k) + 1) {  // small table: take every candidate
    for (const auto& name : probe_order_) {
      auto it = members_.find(name);
      if (it != members_.end() && name != exclude && it->second.state == pb::ALIVE) out.push_back(&it->second);
    }
    std::shuffle(out.begin(), out.end(), rng_);
    if (out.size() > static_cast<size_t>(k)) out.resize(static_cast<size_t>(k));
    return out;
  }
  std::uniform_int_distribution<size_t> pick(0, n - 1);
  for (int tries = 0; tries < 4 * k && out.size() < static_cast<size_t>(k); ++tries) {
    const std::string& name = probe_order_[pick(rng_)];
    auto it = members_.find(name);
    if (it == members_.end() || name == exclude || it->second.state != pb::ALIVE) continue;
    if (std::find(out.begin(), out.end(), &it->second) == out.end()) out.push_back(&it->second);
  }
  return out;
}

}  // namespace roam
