#include "cluster/swim.h"

#include "cluster/swim_validate.h"

#include <algorithm>
#include <cmath>

namespace roam {

namespace {

bool Live(MemberState s) { return s == pb::ALIVE || s == pb::SUSPECT; }

// Bytes an update adds to a SwimMessage: its body, the field tag, the length.
size_t WireCost(const pb::MemberUpdate& u) {
  const size_t b = u.ByteSizeLong();
  return b + 1 + (b < 128 ? 1 : 2);
}

}  // namespace

Swim::Swim(const SwimConfig& config, std::string name, std::string address, uint64_t incarnation,
           SwimTransport* transport, uint64_t seed, std::shared_ptr<MemberDirectory> directory)
    : cfg_(config),
      members_(directory ? std::move(directory) : std::make_shared<MemberDirectory>()),
      transport_(transport), rng_(seed), load_stamp_(incarnation * 1000) {
  self_ = dir().Intern(name, address);
  Member& me = members_.Insert(self_, pb::ALIVE);
  me.incarnation = incarnation;
}

// ---- lifecycle -----------------------------------------------------------------

void Swim::Start(int64_t now, bool multicast, std::vector<std::string> static_peers) {
  multicast_ = multicast;
  static_peers_ = std::move(static_peers);
  self().state_since_ms = now;
  Broadcast(self_, self().ToUpdate());
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
  SetState(self_, pb::LEFT, now);
  pb::SwimMessage msg = NewMessage(pb::SwimMessage::LEAVE);
  *msg.add_updates() = self().ToUpdate();
  for (const auto& [name, m] : members_) {
    if (&m != &self() && Live(m.state)) transport_->Send(m.address, msg);
  }
  left_ = true;
}

void Swim::Tick(int64_t now) {
  if (left_) return;
  CheckProbe(now);
  if (now >= next_probe_at_) {
    StartProbe(now);
    next_probe_at_ = now + Scaled(cfg_.probe_interval_ms);
  }
  CheckSuspects(now);
  if (now >= next_gossip_at_) {
    SendGossip(now);
    last_gossip_at_ = now;
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
  TickRelays(now);
  Reap(now);
}

// ---- failure detection -------------------------------------------------------------

void Swim::StartProbe(int64_t now) {
  // Buddy system, extended: every other probe goes to the oldest member we
  // suspect on our own (nobody confirmed it), carrying the suspicion, so
  // that a suspicion we raised while cut off still reaches its subject.
  // Dogpile, helped: otherwise, a suspicion heard from others that we have
  // not checked ourselves and that is short of confirmations; our probe
  // either confirms it (a crash is declared sooner) or, the PING carrying
  // it, makes a live suspect refute.
  if ((cfg_.buddy || cfg_.dogpile) && (++probes_started_ % 2 == 0)) {
    MemberId lone = kNoMember, unchecked = kNoMember;
    int64_t lone_since = 0, unchecked_since = 0;
    for (const auto& [id, s] : suspects_) {
      if (cfg_.buddy && s.first == self_ && s.confirmed_by.empty() && (lone == kNoMember || s.since < lone_since)) {
        lone = id;
        lone_since = s.since;
      }
      if (cfg_.dogpile && !s.checked && s.first != self_ &&
          static_cast<int>(s.confirmed_by.size()) < ConfirmationsExpected() &&
          (unchecked == kNoMember || s.since > unchecked_since)) {
        unchecked = id;
        unchecked_since = s.since;
      }
    }
    const MemberId pick = lone != kNoMember ? lone : unchecked;
    if (pick != kNoMember) {
      suspects_.at(pick).checked = true;
      ProbeMember(pick, now);
      return;
    }
  }
  if (cfg_.shared_probe_order) {
    ProbeInSharedOrder(now);
    return;
  }
  // Next target in round-robin order over a shuffled list; reshuffle at the end.
  for (int attempts = 0; attempts < 2; ++attempts) {
    if (probe_order_stale_) RebuildProbeOrder(0);
    while (probe_pos_ < probe_order_.size()) {
      const MemberId id = probe_order_[probe_pos_++];
      const Member* m = members_.Get(id);
      if (!m || id == self_ || !Live(m->state)) continue;
      ProbeMember(id, now);
      return;
    }
    RebuildProbeOrder(0);
  }
}

void Swim::ProbeInSharedOrder(int64_t now) {
  // Every node holds the live members (itself included) in one order, a
  // hash of their names and of the epoch, and in protocol period P probes
  // the member 1 + (P mod (n-1)) places after itself. For one P that is a
  // bijection: each member is probed by exactly one other in every period,
  // so a crashed member is probed within a period of its crash instead of
  // after a geometric wait (nobody picks it in a period with probability
  // ~1/e when the N-1 probers choose independently). Over n-1 periods a
  // node still probes every member once (SWIM's round-robin bound). The
  // order is reshuffled every n-1 periods (a new epoch).
  const size_t n = LiveCount();
  if (n < 2) return;
  const int64_t t = cfg_.probe_interval_ms;
  const int64_t period = now >= 0 ? now / t : -((-now + t - 1) / t);
  const uint64_t p = static_cast<uint64_t>(period);
  const uint64_t epoch = p / (n - 1);
  if (probe_order_stale_ || epoch != probe_epoch_ || probe_order_.size() != n) RebuildProbeOrder(epoch);
  if (probe_order_.size() < 2 || self_pos_ >= probe_order_.size()) return;
  const size_t m = probe_order_.size();
  const MemberId id = probe_order_[(self_pos_ + 1 + p % (m - 1)) % m];
  if (const Member* mem = members_.Get(id); mem && id != self_ && Live(mem->state)) ProbeMember(id, now);
}

void Swim::ProbeMember(MemberId id, int64_t now) {
  probe_ = Probe{id, next_probe_id_++, now, Scaled(cfg_.ping_timeout_ms), Scaled(cfg_.probe_interval_ms), false};
  SendPing(id, probe_->id);
}

void Swim::SendPing(MemberId id, uint32_t probe_id) {
  const Member& m = members_.Row(id);
  pb::SwimMessage ping = NewMessage(pb::SwimMessage::PING);
  ping.set_probe_id(probe_id);
  if (cfg_.buddy && m.state == pb::SUSPECT) {
    pb::MemberUpdate suspicion = m.ToUpdate();
    if (auto s = suspects_.find(id); s != suspects_.end() && s->second.first != kNoMember) {
      suspicion.set_suspected_by(dir().name(s->second.first));
    }
    SendWithPiggyback(m.address, std::move(ping), &suspicion);
  } else {
    SendWithPiggyback(m.address, std::move(ping));
  }
}

namespace {

// FNV-1a of a member's name, mixed with the epoch: the same on every node.
uint64_t ProbeKey(const std::string& name, uint64_t epoch) {
  uint64_t h = 1469598103934665603ULL ^ (epoch * 0x9E3779B97F4A7C15ULL);
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ULL;
  h ^= h >> 29;
  h *= 0xBF58476D1CE4E5B9ULL;
  return h ^ (h >> 32);
}

}  // namespace

void Swim::RebuildProbeOrder(uint64_t epoch) {
  probe_order_.clear();
  probe_order_stale_ = false;
  if (!cfg_.shared_probe_order) {
    for (MemberId id = 0; id < dir().size(); ++id) {
      const Member* m = members_.Get(id);
      if (m && id != self_ && Live(m->state)) probe_order_.push_back(id);
    }
    std::shuffle(probe_order_.begin(), probe_order_.end(), rng_);
    probe_pos_ = 0;
    return;
  }
  std::vector<std::pair<uint64_t, MemberId>> keyed;
  keyed.reserve(live_count_);
  for (MemberId id = 0; id < dir().size(); ++id) {
    const Member* m = members_.Get(id);
    if (m && Live(m->state)) keyed.emplace_back(ProbeKey(dir().name(id), epoch), id);
  }
  std::sort(keyed.begin(), keyed.end(), [&](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : dir().name(a.second) < dir().name(b.second);
  });
  probe_order_.reserve(keyed.size());
  for (const auto& [key, id] : keyed) {
    if (id == self_) self_pos_ = probe_order_.size();
    probe_order_.push_back(id);
  }
  probe_epoch_ = epoch;
}

void Swim::CheckProbe(int64_t now) {
  if (!probe_) return;
  const MemberId target = probe_->target;
  const Member* m = members_.Get(target);
  if (!m || !Live(m->state)) {
    probe_.reset();
    return;
  }
  if (!probe_->indirect_sent && now >= probe_->sent_at + probe_->timeout) {
    probe_->indirect_sent = true;
    for (MemberId helper : RandomLive(IndirectChecks(), target)) {
      pb::SwimMessage req = NewMessage(pb::SwimMessage::PING_REQ);
      req.set_probe_id(probe_->id);
      req.set_target(m->name);
      req.set_target_address(m->address);
      SendWithPiggyback(members_.Row(helper).address, std::move(req));
    }
    if (cfg_.retry_direct) SendPing(target, probe_->id);  // the direct path may have lost only one message
  }
  if (now >= probe_->sent_at + probe_->period) {
    probe_.reset();
    // A suspect's silence was expected; only a silent ALIVE member hints
    // that the fault may be ours.
    if (m->state == pb::ALIVE) AdjustHealth(+1);
    Suspect(target, now);
  }
}

void Swim::TickRelays(int64_t now) {
  for (auto it = relays_.begin(); it != relays_.end();) {
    Relay& r = it->second;
    if (now - r.started_at > cfg_.probe_interval_ms) {
      it = relays_.erase(it);
      continue;
    }
    // A helper's path has four legs; a retry covers the two to the target
    // and back, which fail 19% of the time at 10% loss. It goes bare: a
    // member that did not answer is likely gone, and each update it carried
    // would be one transmission fewer for the live members.
    if (cfg_.helper_retry && !r.retried && now - r.started_at >= Scaled(cfg_.ping_timeout_ms) / 2) {
      r.retried = true;
      pb::SwimMessage ping = NewMessage(pb::SwimMessage::PING);
      ping.set_probe_id(it->first);
      ping.set_origin(r.origin_name);
      transport_->Send(r.target_address, ping);
    }
    ++it;
  }
}

void Swim::Suspect(MemberId id, int64_t now) {
  const Member& m = members_.Row(id);
  pb::MemberUpdate u = m.ToUpdate();
  u.set_state(pb::SUSPECT);
  u.set_suspected_by(name());
  const bool fresh = m.state == pb::ALIVE;
  // A fresh suspicion is ours; on one already held our failed probe is a
  // confirmation (Lifeguard's dogpile), gossiped on so others count it too.
  ApplyUpdate(u, now);
  if (fresh && cfg_.buddy) SendPing(id, next_probe_id_++);  // if the suspect hears, it refutes at once
}

bool Swim::Confirm(MemberId id, MemberId suspecter) {
  auto it = suspects_.find(id);
  if (it == suspects_.end() || suspecter == kNoMember) return false;
  Suspicion& s = it->second;
  if (suspecter == s.first) return false;
  if (std::find(s.confirmed_by.begin(), s.confirmed_by.end(), suspecter) != s.confirmed_by.end()) return false;
  if (static_cast<int>(s.confirmed_by.size()) >= std::max(1, ConfirmationsExpected())) return false;
  s.confirmed_by.push_back(suspecter);
  s.deadline = s.since + SuspicionTimeout(s);
  return true;
}

void Swim::CheckSuspects(int64_t now) {
  if (suspects_.empty()) return;
  // Local health stretches our own timeouts: a node that cannot hear its
  // own acks is the last one that should declare anyone dead.
  std::vector<MemberId> expired;
  for (const auto& [id, s] : suspects_) {
    if (now >= s.since + Scaled(s.deadline - s.since)) expired.push_back(id);
  }
  for (MemberId id : expired) {
    pb::MemberUpdate u = members_.Row(id).ToUpdate();
    u.set_state(pb::DEAD);
    ApplyUpdate(u, now);
  }
}

int64_t Swim::MinSuspicionTimeout() const {
  double n = static_cast<double>(std::max<size_t>(LiveCount(), 1));
  return static_cast<int64_t>(cfg_.suspicion_mult * std::max(1.0, std::log10(n)) * cfg_.probe_interval_ms);
}

int64_t Swim::SuspicionTimeout(const Suspicion& s) const {
  const int64_t lo = MinSuspicionTimeout();
  if (!cfg_.dogpile) return lo;
  const int k = ConfirmationsExpected();
  if (k < 1) return lo;
  const double hi = cfg_.suspicion_max_mult * static_cast<double>(lo);
  const double c = static_cast<double>(s.confirmed_by.size());
  const double t = hi - (hi - static_cast<double>(lo)) * std::log(c + 1) / std::log(k + 1.0);
  return std::max(lo, static_cast<int64_t>(t));
}

int Swim::ConfirmationsExpected() const {
  // Lifeguard's K (3) is meant for large clusters. In a small one few nodes
  // can confirm, each only after a probe period of its own: one per decade
  // of N, and never more than there are other members to give them.
  const int n = static_cast<int>(LiveCount());
  const int by_size = cfg_.suspicion_confirmations_by_size ? static_cast<int>(std::ceil(std::log10(std::max(n, 2))))
                                                           : cfg_.suspicion_confirmations;
  return std::min({cfg_.suspicion_confirmations, by_size, n - 2});
}

int Swim::IndirectChecks() const {
  if (!cfg_.helpers_by_size) return cfg_.indirect_checks;
  // A probe of a live member fails only if the direct pings and every
  // helper's path fail: each helper more divides that by ~4.5 at 10% loss.
  const int decades = static_cast<int>(std::ceil(std::log10(std::max<double>(static_cast<double>(LiveCount()), 2))));
  return cfg_.indirect_checks + std::max(0, decades - 2);
}

int Swim::RetransmitLimit() const {
  double n = static_cast<double>(members_.size());
  return static_cast<int>(std::ceil(cfg_.retransmit_mult * std::max(1.0, std::log10(n + 1))));
}

void Swim::AdjustHealth(int delta) {
  if (!cfg_.local_health) return;
  local_health_ = std::clamp(local_health_ + delta, 0, cfg_.max_local_health);
}

// ---- receiving ---------------------------------------------------------------------

void Swim::Receive(const std::string& from, const pb::SwimMessage& msg, int64_t now) {
  if (left_) return;
  bool sender_was_dead = false;
  MemberId sender = kNoMember;
  if (msg.has_self()) {
    sender = dir().Find(msg.self().name());
    const Member* m = sender == kNoMember ? nullptr : members_.Get(sender);
    sender_was_dead = m && (m->state == pb::DEAD || m->state == pb::LEFT);
    ApplyUpdate(msg.self(), now);
    sender = dir().Find(msg.self().name());
  }
  for (const auto& u : msg.updates()) ApplyUpdate(u, now);
  for (const auto& v : msg.loads()) ApplyLoad(v, now);

  switch (msg.kind()) {
    case pb::SwimMessage::PING: {
      pb::SwimMessage ack = NewMessage(pb::SwimMessage::ACK);
      ack.set_probe_id(msg.probe_id());
      ack.set_target(name());
      SendWithPiggyback(from, std::move(ack));
      break;
    }
    case pb::SwimMessage::ACK: {
      if (probe_ && msg.probe_id() == probe_->id && msg.target() == dir().name(probe_->target)) {
        probe_.reset();
        AdjustHealth(-1);
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
      relays_[id] = Relay{from, msg.probe_id(), now, msg.self().name(), msg.target_address(), false};
      pb::SwimMessage ping = NewMessage(pb::SwimMessage::PING);
      ping.set_probe_id(id);
      ping.set_origin(msg.self().name());
      // Bare, like the retry: its target missed a direct ping already and is
      // likely gone, and an update it carried there would be one
      // transmission fewer for the live members (in 10-node clusters the
      // news of a death ran out this way before the last node heard it).
      transport_->Send(msg.target_address(), ping);
      break;
    }
    case pb::SwimMessage::ANNOUNCE: {
      // A join (a newcomer, or a restarted member we hold dead) gets the whole
      // table; a reconnect attempt gets the short push-pull. Periodic
      // announces of members we already know cost nothing.
      if (sender == kNoMember || !members_.Get(sender)) return;
      if (msg.sync_reply_wanted()) {
        SendPushPull(from, sender, now);
      } else if (members_.Row(sender).state_since_ms == now || (sender_was_dead && SyncAllowed(sender, now))) {
        SendSync(from, now);
      }
      return;
    }
    case pb::SwimMessage::SYNC:
      if (msg.sync_reply_wanted()) SendPushPull(from, sender, now, /*reply_wanted=*/false);
      return;
    default:
      break;
  }
  // A member we believed dead is talking to us: push-pull so both can refute.
  if (sender_was_dead && msg.kind() != pb::SwimMessage::LEAVE && SyncAllowed(sender, now)) {
    SendPushPull(from, sender, now);
  }
}

bool Swim::SyncAllowed(MemberId member, int64_t now) {
  auto& last = last_sync_to_[member];
  if (last != 0 && now - last < cfg_.reconnect_interval_ms) return false;
  last = now;
  return true;
}

void Swim::ApplyUpdate(const pb::MemberUpdate& u, int64_t now) {
  if (u.name() == name()) {
    Member& me = self();
    if (me.state == pb::LEFT) return;
    bool accused = u.state() != pb::ALIVE && u.incarnation() >= me.incarnation;
    bool outdated = u.state() == pb::ALIVE && u.incarnation() > me.incarnation;
    if (accused) AdjustHealth(+1);  // Lifeguard: being suspected hints that we are the slow one
    if (accused || outdated) Refute(u.incarnation());
    return;
  }
  const MemberId id = dir().Intern(u.name(), "");
  const Member* known = members_.Get(id);
  if (!known) {
    if (!u.address().empty()) dir().SetAddress(id, u.address());
    Member& m = Insert(id, u, now);
    // A newcomer is probed within this round, at a random place in it (the
    // shared order takes it in at the next probe, through TrackState).
    if (!cfg_.shared_probe_order && m.state == pb::ALIVE && !probe_order_.empty()) {
      std::uniform_int_distribution<size_t> at(probe_pos_, probe_order_.size());
      probe_order_.insert(probe_order_.begin() + static_cast<long>(at(rng_)), id);
    }
    if (m.state == pb::SUSPECT) suspects_.at(id).first = dir().Find(u.suspected_by());
    Broadcast(id, u);
    if (on_state_change) on_state_change(pb::MEMBER_STATE_UNSPECIFIED, members_.Row(id));
    return;
  }
  if (!Supersedes(u, *known)) {
    // The same suspicion from another node: a confirmation (Lifeguard).
    if (cfg_.dogpile && u.state() == pb::SUSPECT && known->state == pb::SUSPECT &&
        u.incarnation() == known->incarnation && !u.suspected_by().empty() &&
        Confirm(id, dir().Intern(u.suspected_by(), ""))) {
      pb::MemberUpdate fwd = u;
      fwd.set_address(known->address);
      Broadcast(id, fwd);
    }
    return;
  }
  Member& m = members_.Row(id);
  const bool resuspected = m.state == pb::SUSPECT && u.state() == pb::SUSPECT;
  m.incarnation = u.incarnation();
  if (!u.address().empty() && u.address() != m.address) dir().SetAddress(id, u.address());
  if (resuspected) {  // a new suspicion at a higher incarnation: its clock restarts
    m.state_since_ms = now;
    Suspicion fresh;
    fresh.since = now;
    fresh.deadline = now + SuspicionTimeout(fresh);
    suspects_[id] = std::move(fresh);
  } else {
    SetState(id, u.state(), now);
  }
  pb::MemberUpdate out = m.ToUpdate();
  if (u.state() == pb::SUSPECT) {
    const MemberId by = u.suspected_by().empty() ? kNoMember : dir().Intern(u.suspected_by(), "");
    suspects_.at(id).first = by;
    out.set_suspected_by(u.suspected_by());
  }
  Broadcast(id, out);
}

Member& Swim::Insert(MemberId id, const pb::MemberUpdate& u, int64_t now) {
  Member& m = members_.Insert(id, u.state());
  m.incarnation = u.incarnation();
  m.state_since_ms = now;
  TrackState(id, pb::MEMBER_STATE_UNSPECIFIED);
  return members_.Row(id);
}

void Swim::Seed(const std::vector<pb::MemberUpdate>& snapshot, int64_t now) {
  std::vector<MemberId> ids;
  ids.reserve(snapshot.size());
  for (const auto& u : snapshot) ids.push_back(dir().Intern(u.name(), u.address()));
  members_.Reserve();
  for (size_t i = 0; i < snapshot.size(); ++i) {
    if (!members_.Get(ids[i])) Insert(ids[i], snapshot[i], now);
  }
  probe_order_.clear();
  probe_pos_ = 0;
  probe_order_stale_ = true;
}

void Swim::Refute(uint64_t accused_incarnation) {
  Member& me = self();
  // Validated input stays below kMaxIncarnation; a refutation that would
  // reach it could not travel, so it is not made.
  if (std::max(me.incarnation, accused_incarnation) + 1 >= kMaxIncarnation) return;
  me.incarnation = std::max(me.incarnation, accused_incarnation) + 1;
  load_stamp_ = std::max(load_stamp_, me.incarnation * 1000);
  Broadcast(self_, me.ToUpdate());
}

void Swim::SetState(MemberId id, MemberState s, int64_t now) {
  Member& m = members_.Row(id);
  if (m.state == s) return;
  MemberState old = m.state;
  m.state = s;
  m.state_since_ms = now;
  TrackState(id, old);
  if (on_state_change) on_state_change(old, m);
}

void Swim::TrackState(MemberId id, MemberState old) {
  const Member& m = members_.Row(id);
  if (Live(old)) --live_count_;
  if (Live(m.state)) ++live_count_;
  if (cfg_.shared_probe_order && Live(old) != Live(m.state)) probe_order_stale_ = true;
  if (old == pb::SUSPECT) suspects_.erase(id);
  if (old == pb::DEAD || old == pb::LEFT) down_.erase(id);
  if (m.state == pb::SUSPECT) {
    Suspicion s;
    s.since = m.state_since_ms;
    s.deadline = s.since + SuspicionTimeout(s);
    suspects_[id] = std::move(s);
  }
  if (m.state == pb::DEAD || m.state == pb::LEFT) {
    down_[id] = m.state_since_ms;
    DropLoad(id);
  }
}

// ---- load vectors ----------------------------------------------------------------------

void Swim::ApplyLoad(const pb::LoadVector& v, int64_t now) {
  const MemberId id = dir().Find(v.node());
  if (id == kNoMember || id == self_) return;
  Member* m = members_.Get(id);
  if (!m || !Live(m->state)) return;
  if (m->load) {
    if (m->load->vector.stamp() < v.stamp()) m->load = std::make_unique<LoadRecord>(LoadRecord{v, now});
    return;
  }
  if (v.age_ms() > static_cast<uint64_t>(cfg_.load_max_age_ms)) return;
  if (static_cast<int>(load_sample_.size()) < cfg_.load_sample_size) {
    m->load = std::make_unique<LoadRecord>(LoadRecord{v, now});
    load_sample_.push_back(id);
    return;
  }
  // Full: a fresher vector replaces the stalest, so the sample renews itself
  // with whichever peers gossip reaches us from.
  size_t stalest = 0;
  uint64_t stalest_age = 0;
  for (size_t i = 0; i < load_sample_.size(); ++i) {
    const uint64_t age = members_.Row(load_sample_[i]).load->AgeAt(now);
    if (age >= stalest_age) {
      stalest = i;
      stalest_age = age;
    }
  }
  if (stalest_age <= v.age_ms()) return;
  members_.Row(load_sample_[stalest]).load.reset();
  load_sample_[stalest] = id;
  m->load = std::make_unique<LoadRecord>(LoadRecord{v, now});
}

void Swim::DropLoad(MemberId id) {
  if (id == self_) return;
  members_.Row(id).load.reset();
  auto it = std::find(load_sample_.begin(), load_sample_.end(), id);
  if (it != load_sample_.end()) {
    *it = load_sample_.back();
    load_sample_.pop_back();
  }
}

void Swim::SetSelfLoad(const pb::LoadVector& v, int64_t now) {
  pb::LoadVector mine = v;
  mine.set_node(name());
  mine.set_stamp(++load_stamp_);
  mine.set_age_ms(0);
  self().load = std::make_unique<LoadRecord>(LoadRecord{mine, now});
}

// ---- sending -------------------------------------------------------------------------

pb::SwimMessage Swim::NewMessage(pb::SwimMessage::Kind kind) {
  pb::SwimMessage msg;
  msg.set_kind(kind);
  *msg.mutable_self() = self().ToUpdate();
  return msg;
}

void Swim::Broadcast(MemberId id, const pb::MemberUpdate& u) {
  auto it = broadcasts_.find(id);
  if (it != broadcasts_.end()) queue_.erase(it->second.key);
  Pending& p = broadcasts_[id];
  p.update = u;
  p.transmits = 0;
  p.key = QueueKey{0, 0, id};
  queue_.insert(p.key);
}

void Swim::SendWithPiggyback(const std::string& address, pb::SwimMessage msg, const pb::MemberUpdate* first) {
  size_t size = msg.ByteSizeLong();
  const size_t budget = static_cast<size_t>(cfg_.max_message_bytes);
  int count = 0;
  if (first) {
    *msg.add_updates() = *first;
    size += WireCost(*first);
    ++count;
  }
  // queue_ is in sending order: fresh news of any kind, then repeated
  // refutations and DEAD/LEFT, then repeated SUSPECT; fewest sends first.
  std::vector<MemberId> sent;
  for (auto it = queue_.begin(); it != queue_.end() && count < cfg_.max_piggyback; ++it) {
    const MemberId id = std::get<2>(*it);
    const pb::MemberUpdate& u = broadcasts_.at(id).update;
    if (first && u.name() == first->name() && u.state() == first->state()) continue;
    const size_t cost = WireCost(u);
    if (size + cost > budget) break;
    *msg.add_updates() = u;
    size += cost;
    ++count;
    sent.push_back(id);
  }
  const int limit = RetransmitLimit();
  for (MemberId id : sent) {
    auto it = broadcasts_.find(id);
    Pending& p = it->second;
    queue_.erase(p.key);
    if (++p.transmits >= limit) {
      broadcasts_.erase(it);
      continue;
    }
    const bool repeated_suspect = p.update.state() == pb::SUSPECT;
    p.key = QueueKey{cfg_.priority_dissemination && repeated_suspect ? 1 : 0, p.transmits, id};
    queue_.insert(p.key);
  }
  transport_->Send(address, msg);
}

pb::LoadVector Swim::SelfLoad(int64_t now) const {
  const Member& me = members_.Row(self_);
  return me.load ? LoadForWire(me, now) : pb::LoadVector();
}

pb::LoadVector Swim::LoadForWire(const Member& m, int64_t now) const {
  pb::LoadVector v = m.load->vector;
  v.set_age_ms(m.load->AgeAt(now));
  return v;
}

void Swim::SendGossip(int64_t now) {
  // Vectors past their age limit leave the sample (their slot is refilled by
  // the next fresh vector that arrives).
  for (size_t i = 0; i < load_sample_.size();) {
    if (members_.Row(load_sample_[i]).load->AgeAt(now) > static_cast<uint64_t>(cfg_.load_max_age_ms)) {
      DropLoad(load_sample_[i]);
    } else {
      ++i;
    }
  }
  std::vector<MemberId> targets = RandomLive(cfg_.gossip_fanout, kNoMember);
  if (targets.empty()) return;
  const Member& me = self();
  std::vector<MemberId> sample = load_sample_;
  for (MemberId t : targets) {
    // Own vector first, then a random part of the sample.
    pb::SwimMessage msg = NewMessage(pb::SwimMessage::GOSSIP);
    if (me.load) *msg.add_loads() = LoadForWire(me, now);
    for (size_t i = 0; i < sample.size() && msg.loads_size() < cfg_.max_loads_per_gossip; ++i) {
      std::uniform_int_distribution<size_t> pick(i, sample.size() - 1);
      std::swap(sample[i], sample[pick(rng_)]);
      if (sample[i] == t) continue;
      *msg.add_loads() = LoadForWire(members_.Row(sample[i]), now);
    }
    SendWithPiggyback(members_.Row(t).address, std::move(msg));
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

void Swim::SendPushPull(const std::string& address, MemberId peer, int64_t now, bool reply_wanted) {
  // Only what lets the two sides correct each other: our own record (in
  // `self`) and what we hold about the peer, which it refutes if DEAD.
  pb::SwimMessage msg = NewMessage(pb::SwimMessage::SYNC);
  msg.set_sync_reply_wanted(reply_wanted);
  if (const Member* m = peer == kNoMember ? nullptr : members_.Get(peer); m && peer != self_) {
    *msg.add_updates() = m->ToUpdate();
  }
  const Member& me = self();
  if (me.load) *msg.add_loads() = LoadForWire(me, now);
  transport_->Send(address, msg);
}

void Swim::Announce(const std::string& address, bool reply_wanted) {
  pb::SwimMessage msg = NewMessage(pb::SwimMessage::ANNOUNCE);
  msg.set_sync_reply_wanted(reply_wanted);
  transport_->Send(address, msg);
}

void Swim::ReconnectDead(int64_t now) {
  std::vector<MemberId> dead;
  for (const auto& [id, since] : down_) {
    if (members_.Row(id).state == pb::DEAD) dead.push_back(id);
  }
  if (dead.empty()) return;
  std::uniform_int_distribution<size_t> pick(0, dead.size() - 1);
  Announce(members_.Row(dead[pick(rng_)]).address, true);
}

void Swim::Reap(int64_t now) {
  for (auto it = down_.begin(); it != down_.end();) {
    if (now - it->second <= cfg_.dead_reap_ms || it->first == self_) {
      ++it;
      continue;
    }
    const MemberId id = it->first;
    it = down_.erase(it);
    last_sync_to_.erase(id);
    if (auto b = broadcasts_.find(id); b != broadcasts_.end()) {
      queue_.erase(b->second.key);
      broadcasts_.erase(b);
    }
    members_.Erase(id);
  }
}

std::vector<MemberId> Swim::RandomLive(int k, MemberId exclude) {
  std::vector<MemberId> out;
  if (k <= 0) return out;
  if (probe_order_.empty() || probe_order_stale_) RebuildProbeOrder(probe_epoch_);
  const size_t n = probe_order_.size();
  auto usable = [&](MemberId id) {
    const Member* m = members_.Get(id);
    return m && id != exclude && id != self_ && m->state == pb::ALIVE;
  };
  if (n <= static_cast<size_t>(k) + 2) {  // small table (self included): take every candidate
    for (MemberId id : probe_order_) {
      if (usable(id)) out.push_back(id);
    }
    std::shuffle(out.begin(), out.end(), rng_);
    if (out.size() > static_cast<size_t>(k)) out.resize(static_cast<size_t>(k));
    return out;
  }
  std::uniform_int_distribution<size_t> pick(0, n - 1);
  for (int tries = 0; tries < 4 * k && out.size() < static_cast<size_t>(k); ++tries) {
    const MemberId id = probe_order_[pick(rng_)];
    if (!usable(id)) continue;
    if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
  }
  return out;
}

}  // namespace roam
