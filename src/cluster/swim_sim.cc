#include "cluster/swim_sim.h"

#include "cluster/envelope.h"

namespace roam {

class SwimSim::Transport : public SwimTransport {
 public:
  Transport(SwimSim* sim, int self) : sim_(sim), self_(self) {}
  void Send(const std::string& address, const pb::SwimMessage& msg) override {
    auto it = sim_->by_address_.find(address);
    if (it != sim_->by_address_.end()) sim_->Enqueue(self_, it->second, msg);
  }
  void Multicast(const pb::SwimMessage& msg) override { sim_->MulticastFrom(self_, msg); }

 private:
  SwimSim* sim_;
  int self_;
};

SwimSim::SwimSim(const SimConfig& config)
    : cfg_(config), rng_(config.seed), directory_(std::make_shared<MemberDirectory>()) {
  // What a real datagram adds around the body: the sealed header and the MAC.
  pb::SwimMessage empty;
  Envelope env("default", "n10000", ClusterKey::FromHex(std::string(64, 'a')).value(), 1700000000000000ULL);
  overhead_ = env.Seal(empty).size();
}

SwimSim::~SwimSim() = default;

std::string SwimSim::NameOf(int i) { return "n" + std::to_string(i + 1); }

std::string SwimSim::AddressOf(int i) {
  return "10." + std::to_string(i / 65536) + "." + std::to_string((i / 256) % 256) + "." +
         std::to_string(i % 256) + ":7946";
}

void SwimSim::AddNodes(int n, bool warm, bool static_peer) {
  int first = size();
  for (int i = first; i < first + n; ++i) {
    nodes_.emplace_back();
    nodes_[i].transport = std::make_unique<Transport>(this, i);
    nodes_[i].incarnation = 1000;
    if (cfg_.clock_spread_ms > 0) {
      nodes_[i].clock_origin = std::uniform_int_distribution<int64_t>(0, cfg_.clock_spread_ms - 1)(rng_);
    }
    by_address_[AddressOf(i)] = i;
    directory_->Intern(NameOf(i), AddressOf(i));
  }
  std::vector<pb::MemberUpdate> snapshot;
  if (warm) {
    for (int i = 0; i < size(); ++i) {
      pb::MemberUpdate u;
      u.set_name(NameOf(i));
      u.set_address(AddressOf(i));
      u.set_incarnation(nodes_[i].incarnation);
      u.set_state(pb::ALIVE);
      snapshot.push_back(std::move(u));
    }
  }
  for (int i = first; i < first + n; ++i) {
    StartNode(i, !warm && static_peer);
    if (warm) nodes_[i].swim->Seed(snapshot, now_ + nodes_[i].clock_origin);
  }
  PublishLoads();
}

void SwimSim::StartNode(int i, bool join_peer0) {
  Node& node = nodes_[i];
  node.swim = std::make_unique<Swim>(cfg_.swim, NameOf(i), AddressOf(i), node.incarnation, node.transport.get(),
                                     cfg_.seed * 7919 + static_cast<uint64_t>(i) * 104729 + node.incarnation,
                                     directory_);
  node.swim->on_state_change = [this](MemberState, const Member& m) {
    if (m.state == pb::SUSPECT) ++suspicions_;
    if (m.state != pb::DEAD) return;
    ++dead_declarations_;
    // Names are "n<i+1>" (NameOf).
    const int subject = std::stoi(m.name.substr(1)) - 1;
    if (subject >= 0 && subject < size()) ++nodes_[subject].declared_dead;
  };
  std::vector<std::string> peers;
  if (join_peer0 && i != 0) peers.push_back(AddressOf(0));
  node.swim->Start(now_ + node.clock_origin, cfg_.multicast, peers);
}

void SwimSim::Crash(int i) { nodes_[i].swim.reset(); }

void SwimSim::Restart(int i) {
  nodes_[i].swim.reset();
  nodes_[i].incarnation += 1000000;
  StartNode(i, true);
}

void SwimSim::Leave(int i) {
  if (!nodes_[i].swim) return;
  nodes_[i].swim->Leave(now_ + nodes_[i].clock_origin);
  nodes_[i].swim.reset();
}

void SwimSim::Partition(const std::vector<int>& side) { cut_ = std::set<int>(side.begin(), side.end()); }
void SwimSim::Heal() { cut_.clear(); }
void SwimSim::SetSlow(int i, int64_t extra_ms) { nodes_[i].slow_ms = extra_ms; }

void SwimSim::Enqueue(int from, int to, const pb::SwimMessage& msg) {
  std::string bytes = msg.SerializeAsString();
  nodes_[from].bytes_sent += bytes.size() + overhead_;
  ++messages_sent_;
  // Field tag and length around each repeated entry, as WireCost in swim.cc.
  auto entry = [](size_t b) { return b + 1 + (b < 128 ? 1 : 2); };
  uint64_t carried = 0;
  for (const auto& u : msg.updates()) {
    const uint64_t b = entry(u.ByteSizeLong());
    traffic_.updates_by_state[u.state() < 5 ? u.state() : 0] += b;
    carried += b;
  }
  for (const auto& v : msg.loads()) {
    const uint64_t b = entry(v.ByteSizeLong());
    traffic_.loads += b;
    carried += b;
  }
  const int kind = msg.kind() < 8 ? msg.kind() : 0;
  ++traffic_.messages_by_kind[kind];
  traffic_.own_by_kind[kind] += bytes.size() + overhead_ - carried;
  std::uniform_real_distribution<double> coin(0, 1);
  if (cfg_.loss > 0 && coin(rng_) < cfg_.loss) return;
  if (!cut_.empty() && cut_.count(from) != cut_.count(to)) return;
  std::uniform_int_distribution<int64_t> delay(cfg_.min_delay_ms, cfg_.max_delay_ms);
  queue_.push(InFlight{now_ + delay(rng_) + nodes_[to].slow_ms, order_++, to, from, std::move(bytes)});
}

void SwimSim::MulticastFrom(int from, const pb::SwimMessage& msg) {
  if (!cfg_.multicast) return;
  for (int to = 0; to < size(); ++to) {
    if (to != from) Enqueue(from, to, msg);
  }
}

void SwimSim::PublishLoads() {
  if (!cfg_.publish_load) return;
  for (int i = 0; i < size(); ++i) {
    if (!nodes_[i].swim) continue;
    pb::LoadVector v;
    v.set_cpus(2);
    v.set_cpu_share(2);
    v.set_speed(1000);
    v.set_load(static_cast<double>(i % 7) / 2);
    v.set_mem_total(24ULL << 30);
    v.set_mem_free(12ULL << 30);
    v.set_accepts_guests(true);
    nodes_[i].swim->SetSelfLoad(v, now_ + nodes_[i].clock_origin);
  }
  next_load_at_ = now_ + 1000;
}

void SwimSim::RunFor(int64_t ms) {
  const int64_t end = now_ + ms;
  while (now_ < end) {
    now_ += cfg_.tick_ms;
    while (!queue_.empty() && queue_.top().at <= now_) {
      InFlight m = queue_.top();
      queue_.pop();
      Node& to = nodes_[m.to];
      if (!to.swim) continue;
      pb::SwimMessage msg;
      if (!msg.ParseFromString(m.bytes)) continue;
      to.swim->Receive(AddressOf(m.from), msg, m.at + to.clock_origin);
    }
    if (now_ >= next_load_at_) PublishLoads();
    for (Node& n : nodes_) {
      if (n.swim) n.swim->Tick(now_ + n.clock_origin);
    }
  }
}

MemberState SwimSim::StateSeenBy(int observer, int subject) const {
  const auto& members = nodes_[observer].swim->members();
  auto it = members.find(NameOf(subject));
  return it == members.end() ? pb::MEMBER_STATE_UNSPECIFIED : it->second.state;
}

bool SwimSim::AllRunningSee(int subject, MemberState s) const {
  for (int i = 0; i < size(); ++i) {
    if (i != subject && nodes_[i].swim && StateSeenBy(i, subject) != s) return false;
  }
  return true;
}

}  // namespace roam
