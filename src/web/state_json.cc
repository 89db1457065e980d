#include "web/state_json.h"

#include "cluster/member.h"

namespace roam {

using json = nlohmann::ordered_json;

namespace {

json LoadJson(const pb::LoadVector& l) {
  return json{{"cpus", l.cpus()},
              {"cpu_share", l.cpu_share()},
              {"speed", l.speed()},
              {"load", l.load()},
              {"cpu_util", l.cpu_util()},
              {"mem_total", l.mem_total()},
              {"mem_free", l.mem_free()},
              {"mem_pressure", l.mem_pressure()},
              {"home_procs", l.home_procs()},
              {"guest_procs", l.guest_procs()},
              {"accepts_guests", l.accepts_guests()},
              {"draining", l.draining()},
              {"demand", l.demand()},
              {"age_ms", l.age_ms()}};
}

json ProcessJson(const pb::ProcessView& p) {
  return json{{"gpid", p.gpid()},       {"user", p.user()},
              {"uid", p.uid()},         {"home", p.home()},
              {"where", p.where()},     {"state", p.state()},
              {"nmig", p.nmig()},       {"lock", p.lock()},
              {"cantmove", p.cantmove()}, {"cpu_percent", p.cpu_percent()},
              {"rss_bytes", p.rss_bytes()}, {"time_seconds", p.time_seconds()},
              {"command", p.command()}, {"pid", p.pid()},
              {"address", p.address()}};
}

}  // namespace

json StateJson(const pb::NodesReply& nodes, const pb::PsReply& ps, int64_t now_ms) {
  json out{{"self", nodes.self()}, {"cluster", nodes.cluster()}, {"time_ms", now_ms}};
  json list = json::array();
  for (const pb::NodeView& n : nodes.nodes()) {
    const bool has_load = n.has_load();
    list.push_back(json{{"name", n.name()},
                        {"address", n.address()},
                        {"state", MemberStateName(n.state())},
                        {"is_self", n.is_self()},
                        {"state_age_ms", n.state_age_ms()},
                        {"blocked", has_load && !n.load().accepts_guests()},
                        {"draining", has_load && n.load().draining()},
                        {"load", has_load ? LoadJson(n.load()) : json(nullptr)}});
  }
  out["nodes"] = std::move(list);
  json procs = json::array();
  for (const pb::ProcessView& p : ps.processes()) procs.push_back(ProcessJson(p));
  out["processes"] = std::move(procs);
  json unreachable = json::array();
  for (const std::string& u : ps.unreachable()) unreachable.push_back(u);
  out["unreachable"] = std::move(unreachable);
  return out;
}

json ProgressJson(const pb::MoveProgress* p) {
  if (p == nullptr || p->phase().empty()) return json{{"moving", false}};
  return json{{"moving", true},
              {"gpid", p->gpid()},
              {"from", p->from()},
              {"to", p->to()},
              {"phase", p->phase()},
              {"rounds", p->rounds()},
              {"bytes_sent", p->bytes_sent()},
              {"elapsed_ms", p->elapsed_ms()},
              {"rate_bps", p->rate_bps()}};
}

void HistoryRing::Add(const pb::NodesReply& nodes, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const pb::NodeView& n : nodes.nodes()) {
    if (!n.has_load()) continue;
    const pb::LoadVector& l = n.load();
    std::deque<Sample>& d = nodes_[n.name()];
    d.push_back(Sample{now_ms, l.load(), l.cpu_util(), l.mem_total() - std::min(l.mem_free(), l.mem_total()),
                       l.mem_total()});
    while (d.size() > capacity_) d.pop_front();
  }
  // Forget nodes gone for a whole ring's time.
  for (auto it = nodes_.begin(); it != nodes_.end();) {
    if (!it->second.empty() && now_ms - it->second.back().t > static_cast<int64_t>(capacity_) * 1000) {
      it = nodes_.erase(it);
    } else {
      ++it;
    }
  }
}

json HistoryRing::ToJson(int64_t interval_ms) const {
  std::lock_guard<std::mutex> lock(mu_);
  json nodes = json::object();
  for (const auto& [name, d] : nodes_) {
    json samples = json::array();
    for (const Sample& s : d) {
      samples.push_back(json{{"t", s.t}, {"load", s.load}, {"cpu_util", s.cpu_util},
                             {"mem_used", s.mem_used}, {"mem_total", s.mem_total}});
    }
    nodes[name] = std::move(samples);
  }
  return json{{"interval_ms", interval_ms}, {"nodes", std::move(nodes)}};
}

}  // namespace roam
