#include "node/roamd_config.h"

#include <unistd.h>

#include <cstdlib>
#include <sstream>

#include "cluster/swim_validate.h"
#include "node/job_address.h"
#include "node/page_codec.h"

namespace roam {

namespace {

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r");
  size_t e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

bool ParseUint(const std::string& s, uint64_t max, uint64_t* out) {
  if (s.empty() || s.size() > 19) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > max) return false;
  *out = v;
  return true;
}

bool ParseBool(const std::string& s, bool* out) {
  if (s == "true" || s == "yes" || s == "on" || s == "1") return *out = true, true;
  if (s == "false" || s == "no" || s == "off" || s == "0") return *out = false, true;
  return false;
}

}  // namespace

bool SplitHostPort(const std::string& s, std::string* host, uint16_t* port) {
  if (!IsValidAddress(s)) return false;
  size_t colon = s.rfind(':');
  *host = s.substr(0, colon);
  *port = static_cast<uint16_t>(std::stoul(s.substr(colon + 1)));
  return true;
}

Status ParseRoamdConfig(const std::string& text, RoamdConfig* cfg) {
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    size_t hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    line = Trim(line);
    if (line.empty()) continue;
    size_t eq = line.find('=');
    std::string where = "line " + std::to_string(lineno);
    if (eq == std::string::npos) return Status::Error(where + ": expected 'key = value'");
    std::string key = Trim(line.substr(0, eq)), value = Trim(line.substr(eq + 1));
    uint64_t n = 0;
    auto bad = [&](const char* what) { return Status::Error(where + ": " + key + ": " + what); };
    auto ms = [&](int64_t* field) -> Status {
      if (!ParseUint(value, 3600 * 1000 * 24, &n) || n == 0) return bad("expected milliseconds > 0");
      *field = static_cast<int64_t>(n);
      return Status::Ok();
    };
    Status st;
    if (key == "name") {
      if (!IsValidNodeName(value)) return bad("1-63 characters of A-Z a-z 0-9 . _ -");
      cfg->name = value;
    } else if (key == "cluster") {
      if (!IsValidNodeName(value)) return bad("1-63 characters of A-Z a-z 0-9 . _ -");
      cfg->cluster = value;
    } else if (key == "key_file") {
      cfg->key_file = value;
    } else if (key == "insecure") {
      if (!ParseBool(value, &cfg->insecure)) return bad("expected true or false");
    } else if (key == "bind") {
      if (!IsValidAddress(value + ":1")) return bad("expected an IPv4 address");
      cfg->bind = value;
    } else if (key == "port") {
      if (!ParseUint(value, 65535, &n) || n == 0) return bad("expected a port number");
      cfg->port = static_cast<uint16_t>(n);
    } else if (key == "multicast") {
      if (value != "off" && !IsValidAddress(value)) return bad("expected group:port or off");
      cfg->multicast = value;
    } else if (key == "peers") {
      cfg->peers.clear();
      std::istringstream list(value);
      std::string p;
      while (std::getline(list, p, ',')) {
        p = Trim(p);
        if (p.empty()) continue;
        if (!IsValidAddress(p)) return bad(("bad peer address '" + p + "'").c_str());
        cfg->peers.push_back(p);
      }
    } else if (key == "control_socket") {
      cfg->control_socket = value;
    } else if (key == "log_file") {
      cfg->log_file = value;
    } else if (key == "job_tmpdir") {
      if (!value.empty() && value[0] != '/') return bad("expected an absolute path");
      cfg->job_tmpdir = value;
    } else if (key == "job_addresses") {
      Result<AddressPool> pool = ParseAddressPool(value);
      if (!pool.ok()) return bad(pool.status().message().c_str());
      cfg->job_addresses = value;
    } else if (key == "http") {
      std::string host;
      uint16_t port = 0;
      if (value != "off" && (!SplitHostPort(value, &host, &port) || !IsValidAddress(value))) {
        return bad("expected ADDR:PORT or off");
      }
      cfg->http = value == "off" ? "" : value;
    } else if (key == "compress") {
      if (!CodecChooser::FromSetting(value).ok()) return bad("expected auto, off, lz4 or zstd");
      cfg->compress = value;
    } else if (key == "probe_interval_ms") {
      st = ms(&cfg->swim.probe_interval_ms);
    } else if (key == "ping_timeout_ms") {
      st = ms(&cfg->swim.ping_timeout_ms);
    } else if (key == "gossip_interval_ms") {
      st = ms(&cfg->swim.gossip_interval_ms);
    } else if (key == "announce_interval_ms") {
      st = ms(&cfg->swim.announce_interval_ms);
    } else if (key == "dead_reap_ms") {
      st = ms(&cfg->swim.dead_reap_ms);
    } else if (key == "suspicion_mult") {
      if (!ParseUint(value, 100, &n) || n == 0) return bad("expected 1..100");
      cfg->swim.suspicion_mult = static_cast<double>(n);
    } else if (key == "balance") {
      if (!ParseBool(value, &cfg->balance)) return bad("expected on or off");
    } else if (key == "balance_policy") {
      if (!ParseBalancePolicy(value, &cfg->balancer.policy)) return bad("expected cost or load");
    } else if (key == "balance_period_ms") {
      st = ms(&cfg->balancer.period_ms);
    } else if (key == "balance_min_age_ms") {
      st = ms(&cfg->balancer.min_age_ms);
    } else if (key == "balance_min_residence_ms") {
      st = ms(&cfg->balancer.min_residence_ms);
    } else if (key == "balance_sample") {
      if (!ParseUint(value, 1000, &n) || n == 0) return bad("expected 1..1000");
      cfg->balancer.sample = static_cast<int>(n);
    } else if (key == "balance_max_moves") {
      if (!ParseUint(value, 100, &n) || n == 0) return bad("expected 1..100");
      cfg->balancer.max_moves = static_cast<int>(n);
    } else if (key == "balance_hysteresis_percent") {
      if (!ParseUint(value, 1000, &n)) return bad("expected 0..1000");
      cfg->balancer.hysteresis = static_cast<double>(n) / 100.0;
    } else if (key == "balance_gain_over_cost") {
      if (!ParseUint(value, 1000, &n)) return bad("expected 0..1000");
      cfg->balancer.gain_over_cost = static_cast<double>(n);
    } else if (key == "balance_cost_base") {
      if (!ParseUint(value, 30, &n) || n < 2) return bad("expected 2..30");
      cfg->balancer.cost_base = static_cast<double>(n);
    } else if (key == "balance_mem_weight") {
      if (!ParseUint(value, 100, &n)) return bad("expected 0..100");
      cfg->balancer.mem_weight = static_cast<double>(n);
    } else if (key == "balance_mem_reserve_percent") {
      if (!ParseUint(value, 90, &n)) return bad("expected 0..90");
      cfg->balancer.mem_reserve = static_cast<double>(n) / 100.0;
    } else if (key == "usher_free_percent") {
      if (!ParseUint(value, 90, &n)) return bad("expected 0..90");
      cfg->usher.free_share = static_cast<double>(n) / 100.0;
    } else if (key == "usher_psi_percent") {
      if (!ParseUint(value, 100, &n)) return bad("expected 0..100");
      cfg->usher.psi = static_cast<double>(n);
    } else if (key == "usher_horizon_ms") {
      if (!ParseUint(value, 60000, &n)) return bad("expected 0..60000");
      cfg->usher.horizon_ms = static_cast<int64_t>(n);
    } else if (key == "gossip_fanout") {
      if (!ParseUint(value, 64, &n) || n == 0) return bad("expected 1..64");
      cfg->swim.gossip_fanout = static_cast<int>(n);
    } else {
      return Status::Error(where + ": unknown key '" + key + "'");
    }
    if (!st.ok()) return st;
  }
  if (cfg->swim.ping_timeout_ms >= cfg->swim.probe_interval_ms) {
    return Status::Error("ping_timeout_ms must be shorter than probe_interval_ms");
  }
  return Status::Ok();
}

std::string DefaultConfigPath() {
  if (const char* env = std::getenv("ROAM_CONFIG"); env && *env) return env;
  for (const char* p : {"/run/roam/roamd.conf", "/etc/roam/roamd.conf"}) {
    if (::access(p, R_OK) == 0) return p;
  }
  return "";
}

}  // namespace roam
