// The dashboard's token: what every HTTP request to a roamd must carry
// (docs/DASHBOARD.md). Made from the cluster key, so that every node of a
// cluster accepts the same token and nobody without the key can make one;
// a cluster without a key (--insecure, loopback only) gets a random token
// per roamd start.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "cluster/cluster_key.h"

namespace roam {

// 32 hex characters: BLAKE2b keyed with the cluster key over a fixed label
// and the cluster's name; random when `key` is empty.
std::string DashboardToken(const std::optional<ClusterKey>& key, const std::string& cluster);

// The page's address for `listen` ("ADDR:PORT"): "http://ADDR:PORT/", with
// the node's `bind` address (or its first IPv4 address) for 0.0.0.0.
std::string DashboardUrl(const std::string& listen, const std::string& bind);

// Whether `given` is `token`, compared in constant time.
bool TokenMatches(std::string_view given, std::string_view token);

}  // namespace roam
