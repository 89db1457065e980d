#include "cluster/member.h"

namespace roam {

const char* MemberStateName(MemberState s) {
  switch (s) {
    case pb::ALIVE: return "alive";
    case pb::SUSPECT: return "suspect";
    case pb::DEAD: return "dead";
    case pb::LEFT: return "left";
    default: return "unknown";
  }
}

pb::MemberUpdate Member::ToUpdate() const {
  pb::MemberUpdate u;
  u.set_name(name);
  u.set_address(address);
  u.set_incarnation(incarnation);
  u.set_state(state);
  return u;
}

bool Supersedes(const pb::MemberUpdate& u, const Member& m) {
  const uint64_t i = u.incarnation(), j = m.incarnation;
  switch (u.state()) {
    case pb::ALIVE:
      return i > j;
    case pb::SUSPECT:
      if (m.state == pb::ALIVE) return i >= j;
      if (m.state == pb::SUSPECT) return i > j;
      return false;
    case pb::DEAD:
      return (m.state == pb::ALIVE || m.state == pb::SUSPECT) && i >= j;
    case pb::LEFT:
      return m.state != pb::LEFT && i >= j;
    default:
      return false;
  }
}

}  // namespace roam
