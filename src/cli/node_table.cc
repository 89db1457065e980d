#include "cli/node_table.h"

#include <algorithm>
#include <cstdio>

#include "cluster/member.h"

namespace roam {

bool NaturalLess(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (isdigit(static_cast<unsigned char>(a[i])) && isdigit(static_cast<unsigned char>(b[j]))) {
      size_t i2 = i, j2 = j;
      while (i2 < a.size() && isdigit(static_cast<unsigned char>(a[i2]))) ++i2;
      while (j2 < b.size() && isdigit(static_cast<unsigned char>(b[j2]))) ++j2;
      std::string x = a.substr(i, i2 - i), y = b.substr(j, j2 - j);
      x.erase(0, std::min(x.find_first_not_of('0'), x.size()));
      y.erase(0, std::min(y.find_first_not_of('0'), y.size()));
      if (x.size() != y.size()) return x.size() < y.size();
      if (x != y) return x < y;
      i = i2;
      j = j2;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i;
      ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

std::string HumanBytes(uint64_t b) {
  const char* units = "KMGTP";
  if (b < 1024) return std::to_string(b);
  double v = static_cast<double>(b);
  int u = -1;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  snprintf(buf, sizeof buf, v < 10 ? "%.1f%c" : "%.0f%c", v, units[u]);
  return buf;
}

std::string HumanAge(uint64_t ms) {
  char buf[32];
  if (ms < 10000) snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ms) / 1000);
  else if (ms < 120000) snprintf(buf, sizeof buf, "%lus", static_cast<unsigned long>(ms / 1000));
  else if (ms < 7200000) snprintf(buf, sizeof buf, "%lum", static_cast<unsigned long>(ms / 60000));
  else snprintf(buf, sizeof buf, "%luh", static_cast<unsigned long>(ms / 3600000));
  return buf;
}

static std::vector<const pb::NodeView*> Sorted(const pb::NodesReply& reply) {
  std::vector<const pb::NodeView*> v;
  for (const auto& n : reply.nodes()) v.push_back(&n);
  std::sort(v.begin(), v.end(), [](auto* a, auto* b) { return NaturalLess(a->name(), b->name()); });
  return v;
}

std::vector<std::string> NodeTableHeader() {
  return {"NODE", "ADDRESS", "STATE", "CPUS", "SPEED", "LOAD", "UTIL", "MEM", "GUESTS", "HOMES", "MOVES", "AGE"};
}

std::vector<std::vector<std::string>> NodeTableRows(const pb::NodesReply& reply, bool include_dead) {
  std::vector<std::vector<std::string>> rows;
  char buf[64];
  for (const pb::NodeView* n : Sorted(reply)) {
    bool live = n->state() == pb::ALIVE || n->state() == pb::SUSPECT;
    if (!include_dead && !live) continue;
    std::string name = n->name() + (n->is_self() ? "*" : "");
    std::vector<std::string> r{name, n->address(), MemberStateName(n->state())};
    if (n->has_load() && live) {
      const pb::LoadVector& l = n->load();
      if (l.draining()) {
        r[2] += ",draining";
      } else if (!l.accepts_guests()) {
        r[2] += ",blocked";
      }
      if (l.balance_off()) r[2] += ",fixed";
      snprintf(buf, sizeof buf, l.cpu_share() < l.cpus() ? "%.2f/%u" : "%.0f", l.cpu_share(), l.cpus());
      r.push_back(buf);
      r.push_back(std::to_string(l.speed()));
      snprintf(buf, sizeof buf, "%.2f", l.load());
      r.push_back(buf);
      snprintf(buf, sizeof buf, "%.0f%%", l.cpu_util() * 100);
      r.push_back(buf);
      r.push_back(HumanBytes(l.mem_total() - l.mem_free()) + "/" + HumanBytes(l.mem_total()));
      r.push_back(l.accepts_guests() ? std::to_string(l.guest_procs()) : std::to_string(l.guest_procs()) + "!");
      r.push_back(std::to_string(l.home_procs()));
      // Balancer moves: made by this home / admitted here.
      r.push_back(std::to_string(l.balance_moves()) + "/" + std::to_string(l.balanced_in()));
      r.push_back(HumanAge(l.age_ms()));
    } else {
      for (int i = 0; i < 8; ++i) r.push_back("-");
      r.push_back(HumanAge(n->state_age_ms()));
    }
    rows.push_back(std::move(r));
  }
  return rows;
}

nlohmann::json NodesJson(const pb::NodesReply& reply) {
  nlohmann::json nodes = nlohmann::json::array();
  for (const pb::NodeView* n : Sorted(reply)) {
    nlohmann::json j = {{"name", n->name()},
                        {"address", n->address()},
                        {"state", MemberStateName(n->state())},
                        {"incarnation", n->incarnation()},
                        {"self", n->is_self()},
                        {"state_age_ms", n->state_age_ms()}};
    if (n->has_load()) {
      const pb::LoadVector& l = n->load();
      j["cpus"] = l.cpus();
      j["cpu_share"] = l.cpu_share();
      j["speed"] = l.speed();
      j["load"] = l.load();
      j["cpu_util"] = l.cpu_util();
      j["mem_total"] = l.mem_total();
      j["mem_free"] = l.mem_free();
      j["mem_pressure"] = l.mem_pressure();
      j["home_procs"] = l.home_procs();
      j["guest_procs"] = l.guest_procs();
      j["accepts_guests"] = l.accepts_guests();
      j["blocked"] = !l.accepts_guests();
      j["draining"] = l.draining();
      j["demand"] = l.demand();
      j["balance"] = !l.balance_off();
      j["balance_moves"] = l.balance_moves();
      j["balanced_in"] = l.balanced_in();
      j["ushered"] = l.ushered();
      j["usher"] = !l.usher_off();
      j["load_age_ms"] = l.age_ms();
    }
    nodes.push_back(std::move(j));
  }
  const pb::Counters& c = reply.counters();
  nlohmann::json counters = {{"datagrams_received", c.datagrams_received()},
                             {"datagrams_sent", c.datagrams_sent()},
                             {"bytes_received", c.bytes_received()},
                             {"bytes_sent", c.bytes_sent()},
                             {"dropped_malformed", c.dropped_malformed()},
                             {"dropped_bad_mac", c.dropped_bad_mac()},
                             {"dropped_wrong_cluster", c.dropped_wrong_cluster()},
                             {"dropped_replay", c.dropped_replay()},
                             {"dropped_bad_version", c.dropped_bad_version()},
                             {"dropped_invalid", c.dropped_invalid()},
                             {"links", c.links()},
                             {"link_sessions", c.link_sessions()},
                             {"placing", c.placing()}};
  return {{"self", reply.self()}, {"cluster", reply.cluster()}, {"nodes", nodes}, {"counters", counters}};
}

namespace {

// The length of the valid UTF-8 sequence of two or more bytes at s[i], or 0
// (an ASCII byte, a stray or overlong byte, a surrogate, beyond U+10FFFF).
size_t Utf8Sequence(const std::string& s, size_t i) {
  auto at = [&](size_t k) { return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0u; };
  auto cont = [](unsigned c, unsigned lo = 0x80, unsigned hi = 0xBF) { return c >= lo && c <= hi; };
  const unsigned c = at(0);
  if (c >= 0xC2 && c <= 0xDF) return cont(at(1)) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    const unsigned lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    return cont(at(1), lo, hi) && cont(at(2)) ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    const unsigned lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    return cont(at(1), lo, hi) && cont(at(2)) && cont(at(3)) ? 4 : 0;
  }
  return 0;
}

}  // namespace

std::string PrintableCell(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7F) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    const size_t n = Utf8Sequence(s, i);
    // U+0080..U+009F (C1 controls, e.g. CSI) are C2 80..C2 9F.
    const bool c1 = n == 2 && c == 0xC2 && static_cast<unsigned char>(s[i + 1]) < 0xA0;
    if (n == 0 || c1) {
      out += '?';  // one for a byte that is not UTF-8, one for a C1 character
      i += c1 ? 2 : 1;
    } else {
      out.append(s, i, n);
      i += n;
    }
  }
  return out;
}

size_t CellWidth(const std::string& s) {
  size_t w = 0;
  for (unsigned char c : s) w += (c & 0xC0) != 0x80;
  return w;
}

std::string RenderTable(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
                        bool aligned) {
  auto printable = [](const std::vector<std::string>& r) {
    std::vector<std::string> p;
    p.reserve(r.size());
    for (const std::string& cell : r) p.push_back(PrintableCell(cell));
    return p;
  };
  std::vector<std::vector<std::string>> all{printable(header)};
  for (const auto& r : rows) all.push_back(printable(r));
  std::vector<size_t> w(header.size(), 0);
  for (const auto& r : all) {
    for (size_t i = 0; i < r.size() && i < w.size(); ++i) w[i] = std::max(w[i], CellWidth(r[i]));
  }
  std::string out;
  for (const auto& r : all) {
    for (size_t i = 0; i < r.size(); ++i) {
      out += r[i];
      if (i + 1 < r.size()) out += aligned && i < w.size() ? std::string(w[i] - CellWidth(r[i]) + 2, ' ') : " ";
    }
    out += "\n";
  }
  return out;
}

}  // namespace roam
