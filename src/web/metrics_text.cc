#include "web/metrics_text.h"

#include <fmt/format.h>

#include <cmath>

#include "cluster/member.h"

namespace roam {
namespace {

// A label value with \, " and newline escaped as the format asks.
std::string Label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

class Writer {
 public:
  void Head(const char* name, const char* type, const char* help) {
    out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  void Sample(const std::string& name, const std::string& labels, double v) {
    out_ += name;
    if (!labels.empty()) out_ += "{" + labels + "}";
    out_ += " " + Number(v) + "\n";
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace

std::string RenderMetrics(const pb::NodesReply& r) {
  Writer w;
  const std::string self = "node=\"" + Label(r.self()) + "\"";
  w.Head("roam_node_info", "gauge", "1 for this roamd, labelled with its node and cluster name.");
  w.Sample("roam_node_info", self + ",cluster=\"" + Label(r.cluster()) + "\",version=\"" ROAM_VERSION "\"", 1);

  w.Head("roam_member_state", "gauge", "1 for the state each known node is in, as this node sees it.");
  for (const pb::NodeView& n : r.nodes()) {
    for (pb::MemberState s : {pb::ALIVE, pb::SUSPECT, pb::DEAD, pb::LEFT}) {
      w.Sample("roam_member_state", "node=\"" + Label(n.name()) + "\",state=\"" + MemberStateName(s) + "\"",
               n.state() == s ? 1 : 0);
    }
  }

  // Per-node load, from the load vectors this node has heard.
  struct Gauge {
    const char* name;
    const char* help;
    double (*get)(const pb::LoadVector&);
  };
  static const Gauge kGauges[] = {
      {"roam_node_cpus", "Online CPUs of the node.", [](const pb::LoadVector& l) { return double(l.cpus()); }},
      {"roam_node_cpu_share", "CPUs usable by roam on the node after a cgroup quota.",
       [](const pb::LoadVector& l) { return l.cpu_share(); }},
      {"roam_node_speed", "Per-core speed of the node (calibrated or set).",
       [](const pb::LoadVector& l) { return double(l.speed()); }},
      {"roam_node_load", "Run-queue length of the node, averaged over one minute.",
       [](const pb::LoadVector& l) { return l.load(); }},
      {"roam_node_cpu_utilization", "Share of the node's usable CPUs in use, 0 to 1.",
       [](const pb::LoadVector& l) { return l.cpu_util(); }},
      {"roam_node_memory_total_bytes", "Memory of the node, after a cgroup limit.",
       [](const pb::LoadVector& l) { return double(l.mem_total()); }},
      {"roam_node_memory_available_bytes", "Memory available on the node, after a cgroup limit.",
       [](const pb::LoadVector& l) { return double(l.mem_free()); }},
      {"roam_node_memory_pressure_percent", "PSI memory some avg10 of the node, percent.",
       [](const pb::LoadVector& l) { return l.mem_pressure(); }},
      {"roam_node_home_processes", "roam processes whose home is the node.",
       [](const pb::LoadVector& l) { return double(l.home_procs()); }},
      {"roam_node_guest_processes", "Other homes' roam processes running on the node.",
       [](const pb::LoadVector& l) { return double(l.guest_procs()); }},
      {"roam_node_accepts_guests", "1 if the node takes guests (not blocked).",
       [](const pb::LoadVector& l) { return l.accepts_guests() ? 1.0 : 0.0; }},
      {"roam_node_draining", "1 while the node is being drained.",
       [](const pb::LoadVector& l) { return l.draining() ? 1.0 : 0.0; }},
      {"roam_node_load_age_seconds", "Age of the load this node last heard from the node.",
       [](const pb::LoadVector& l) { return l.age_ms() / 1000.0; }},
  };
  for (const Gauge& g : kGauges) {
    w.Head(g.name, "gauge", g.help);
    for (const pb::NodeView& n : r.nodes()) {
      if (n.has_load()) w.Sample(g.name, "node=\"" + Label(n.name()) + "\"", g.get(n.load()));
    }
  }

  const pb::Counters& c = r.counters();
  w.Head("roam_migrations_started_total", "counter", "Moves of this home's processes begun.");
  w.Sample("roam_migrations_started_total", self, double(c.migrations_started()));
  w.Head("roam_migrations_succeeded_total", "counter", "Moves of this home's processes that ended on the target.");
  w.Sample("roam_migrations_succeeded_total", self, double(c.migrations_succeeded()));
  w.Head("roam_migrations_failed_total", "counter", "Moves of this home's processes that failed (the process ran on where it was).");
  w.Sample("roam_migrations_failed_total", self, double(c.migrations_failed()));
  w.Head("roam_migration_frozen_seconds", "histogram", "Time the processes of succeeded moves were frozen.");
  for (int i = 0; i < c.frozen_ms_bounds_size() && i < c.frozen_ms_counts_size(); ++i) {
    w.Sample("roam_migration_frozen_seconds_bucket", self + ",le=\"" + Number(c.frozen_ms_bounds(i) / 1000.0) + "\"",
             double(c.frozen_ms_counts(i)));
  }
  w.Sample("roam_migration_frozen_seconds_bucket", self + ",le=\"+Inf\"", double(c.migrations_succeeded()));
  w.Sample("roam_migration_frozen_seconds_sum", self, c.frozen_ms_sum() / 1000.0);
  w.Sample("roam_migration_frozen_seconds_count", self, double(c.migrations_succeeded()));

  w.Head("roam_membership_events_total", "counter", "Membership changes this node saw, by the state a member entered.");
  for (const char* s : {"joined", "alive", "suspect", "dead", "left"}) {
    auto it = c.member_events().find(s);
    w.Sample("roam_membership_events_total", self + ",event=\"" + s + "\"",
             it == c.member_events().end() ? 0.0 : double(it->second));
  }

  w.Head("roam_gossip_datagrams_total", "counter", "Gossip datagrams, by direction.");
  w.Sample("roam_gossip_datagrams_total", self + ",direction=\"received\"", double(c.datagrams_received()));
  w.Sample("roam_gossip_datagrams_total", self + ",direction=\"sent\"", double(c.datagrams_sent()));
  w.Head("roam_gossip_bytes_total", "counter", "Gossip bytes, by direction.");
  w.Sample("roam_gossip_bytes_total", self + ",direction=\"received\"", double(c.bytes_received()));
  w.Sample("roam_gossip_bytes_total", self + ",direction=\"sent\"", double(c.bytes_sent()));
  w.Head("roam_gossip_dropped_total", "counter", "Gossip datagrams dropped, by reason.");
  const std::pair<const char*, uint64_t> drops[] = {
      {"malformed", c.dropped_malformed()}, {"bad_mac", c.dropped_bad_mac()},
      {"wrong_cluster", c.dropped_wrong_cluster()}, {"replay", c.dropped_replay()},
      {"bad_version", c.dropped_bad_version()}, {"invalid", c.dropped_invalid()}};
  for (const auto& [reason, n] : drops) {
    w.Sample("roam_gossip_dropped_total", self + ",reason=\"" + reason + "\"", double(n));
  }

  w.Head("roam_links", "gauge", "Node links open now (one per peer in use).");
  w.Sample("roam_links", self, double(c.links()));
  w.Head("roam_link_sessions", "gauge", "Sessions open on the node links now.");
  w.Sample("roam_link_sessions", self, double(c.link_sessions()));
  w.Head("roam_placing", "gauge", "This home's spawns sent to guests and not yet answered.");
  w.Sample("roam_placing", self, double(c.placing()));
  return w.Take();
}

}  // namespace roam
