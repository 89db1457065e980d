// roamd's configuration: a file of `key = value` lines (see
// etc/roamd.conf.example, which documents every key), then command-line
// flags on top. Unknown keys and malformed values are errors, so that a
// typo in a file left alone for months is caught at start.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cluster/swim.h"
#include "node/balancer.h"
#include "node/usher.h"
#include "common/status.h"

namespace roam {

struct RoamdConfig {
  std::string name;                 // default: the host name
  std::string cluster = "default";
  std::string key_file = "/etc/roam/cluster.key";
  bool insecure = false;            // no key; only allowed on a loopback address
  std::string bind = "0.0.0.0";
  uint16_t port = 7946;
  std::string multicast = "239.192.77.77:7947";  // "off" disables discovery by multicast
  std::vector<std::string> peers;   // static peer list, "ip:port" each
  std::string control_socket = "/run/roam/roamd.sock";
  std::string log_file;             // empty: stderr
  std::string compress = "auto";    // memory sent by moves: auto, off, lz4, zstd (node/page_codec.h)
  // TMPDIR of the jobs started here that have none: a directory every node
  // sees (NFS), so that a temporary file a job made by name and closed is
  // still there after it moves. Empty: jobs keep the user's environment.
  std::string job_tmpdir;
  // The pool jobs' own addresses come from (roam run --address, node/
  // job_address.h): a CIDR or FIRST-LAST inside the subnet the nodes
  // share, the same on every node. Empty: jobs cannot ask for one.
  std::string job_addresses;
  // Where the dashboard and /metrics listen, "ADDR:PORT" (docs/DASHBOARD.md);
  // empty: off.
  std::string http;
  SwimConfig swim;
  bool balance = true;              // this node's balancer, and moves to and from it (roam node balance)
  BalanceParams balancer;           // node/balancer.h
  UsherParams usher;                // memory ushering, node/usher.h
};

// Parses the text of a configuration file into *cfg (keys present override
// what *cfg holds). Errors name the line: "line 7: unknown key 'prot'".
Status ParseRoamdConfig(const std::string& text, RoamdConfig* cfg);

// The file roamd reads when none is given: $ROAM_CONFIG, else
// /run/roam/roamd.conf if it exists (a `roam cluster` node), else
// /etc/roam/roamd.conf if it exists, else "" (built-in defaults).
std::string DefaultConfigPath();

// Splits "ip:port"; false if malformed.
bool SplitHostPort(const std::string& s, std::string* host, uint16_t* port);

}  // namespace roam
