// Complete validation of a decoded SwimMessage before any of it is applied:
// names, addresses, states, counts and numbers. A message that fails is
// dropped whole and counted; nothing in it reaches the membership table.
#pragma once

#include "common/status.h"
#include "gossip.pb.h"

namespace roam {

constexpr int kMaxNameLength = 63;
constexpr int kMaxUpdatesPerMessage = 64;
constexpr int kMaxLoadsPerMessage = 64;
// Incarnations start at the wall clock in ms (about 2^41 today); anything at
// or above 2^48 (year 10889) is refused, so that refuting (+1) never wraps.
constexpr uint64_t kMaxIncarnation = uint64_t{1} << 48;
constexpr uint64_t kMaxLoadStamp = uint64_t{1} << 62;

// A node name: 1..63 characters of [A-Za-z0-9._-].
bool IsValidNodeName(const std::string& name);
// "a.b.c.d:port" with a non-zero port; nothing but digits, dots and the colon.
bool IsValidAddress(const std::string& address);

// Ok, or what is wrong ("update 3: bad name").
Status ValidateSwimMessage(const pb::SwimMessage& msg);

}  // namespace roam
