// One row of the membership table and the rules that decide whether a
// membership update replaces what a node believes about a member.
//
// Override rules (SWIM with incarnation numbers; only the member itself
// raises its incarnation, to refute suspicion or on restart):
//   ALIVE(i)   replaces any state with incarnation < i.
//   SUSPECT(i) replaces ALIVE(j) with j <= i, SUSPECT(j) with j < i.
//   DEAD(i)    replaces ALIVE/SUSPECT(j) with j <= i.
//   LEFT(i)    replaces ALIVE/SUSPECT/DEAD(j) with j <= i.
// DEAD and LEFT are only left by a higher-incarnation ALIVE (a rejoin).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "gossip.pb.h"

namespace roam {

using MemberState = pb::MemberState;

const char* MemberStateName(MemberState s);  // "alive", "suspect", "dead", "left"

struct LoadRecord {
  pb::LoadVector vector;      // as the owner published it (age_ms as received)
  int64_t received_at_ms = 0;  // our clock when it arrived
  // Age now: the age it had when sent plus the time since it arrived.
  uint64_t AgeAt(int64_t now_ms) const {
    return vector.age_ms() + static_cast<uint64_t>(now_ms > received_at_ms ? now_ms - received_at_ms : 0);
  }
};

// What one node believes about one member. `name` and `address` refer to
// the MemberDirectory the row belongs to (member_table.h), which outlives
// the row: a row is 48 bytes, so that a simulated 10,000-node cluster (10^8
// rows) fits in memory. A row with state MEMBER_STATE_UNSPECIFIED is an
// empty slot: the member is not known.
struct Member {
  Member(const std::string& n, const std::string& a) : name(n), address(a) {}

  const std::string& name;
  const std::string& address;  // "ip:port"
  uint64_t incarnation = 0;
  int64_t state_since_ms = 0;  // our clock when state last changed
  MemberState state = pb::MEMBER_STATE_UNSPECIFIED;
  // Held only for members in the node's load sample (Swim::load_sample()):
  // out of line, as most of a big table has none.
  std::unique_ptr<LoadRecord> load;

  pb::MemberUpdate ToUpdate() const;
};

// True if `u` should replace what we hold in `m` (same member name).
bool Supersedes(const pb::MemberUpdate& u, const Member& m);

}  // namespace roam
