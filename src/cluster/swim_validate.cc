#include "cluster/swim_validate.h"

#include <arpa/inet.h>

#include <cmath>
#include <string>

namespace roam {

bool IsValidNodeName(const std::string& name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool IsValidAddress(const std::string& address) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= address.size()) return false;
  std::string host = address.substr(0, colon), port = address.substr(colon + 1);
  if (port.size() > 5 || host.size() > 15) return false;
  for (char c : host) {
    if ((c < '0' || c > '9') && c != '.') return false;  // also refuses an embedded NUL
  }
  unsigned long p = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
    p = p * 10 + static_cast<unsigned long>(c - '0');
  }
  if (p == 0 || p > 65535) return false;
  in_addr a{};
  return inet_pton(AF_INET, host.c_str(), &a) == 1;
}

static Status CheckUpdate(const pb::MemberUpdate& u, const std::string& what) {
  if (!IsValidNodeName(u.name())) return Status::Error(what + ": bad node name");
  if (!IsValidAddress(u.address())) return Status::Error(what + ": bad address");
  if (u.state() < pb::ALIVE || u.state() > pb::LEFT) return Status::Error(what + ": bad state");
  if (u.incarnation() >= kMaxIncarnation) return Status::Error(what + ": incarnation out of range");
  if (!u.suspected_by().empty() && !IsValidNodeName(u.suspected_by())) {
    return Status::Error(what + ": bad suspecter name");
  }
  return Status::Ok();
}

static bool Finite(double d, double lo, double hi) { return std::isfinite(d) && d >= lo && d <= hi; }

static Status CheckLoad(const pb::LoadVector& v, const std::string& what) {
  if (!IsValidNodeName(v.node())) return Status::Error(what + ": bad node name");
  if (v.cpus() == 0 || v.cpus() > 65536) return Status::Error(what + ": bad cpu count");
  if (!Finite(v.cpu_share(), 0, 65536)) return Status::Error(what + ": bad cpu share");
  if (!Finite(v.load(), 0, 1e6)) return Status::Error(what + ": bad load");
  if (!Finite(v.cpu_util(), 0, 1.0001)) return Status::Error(what + ": bad cpu utilisation");
  if (!Finite(v.mem_pressure(), 0, 100)) return Status::Error(what + ": bad memory pressure");
  if (v.mem_free() > v.mem_total()) return Status::Error(what + ": free memory above total");
  if (v.stamp() >= kMaxLoadStamp) return Status::Error(what + ": stamp out of range");
  return Status::Ok();
}

Status ValidateSwimMessage(const pb::SwimMessage& msg) {
  if (msg.kind() < pb::SwimMessage::PING || msg.kind() > pb::SwimMessage::LEAVE) {
    return Status::Error("unknown message kind");
  }
  if (!msg.has_self()) return Status::Error("no sender record");
  if (Status st = CheckUpdate(msg.self(), "sender"); !st.ok()) return st;
  if (msg.self().state() != pb::ALIVE && msg.kind() != pb::SwimMessage::LEAVE) {
    return Status::Error("sender not alive");
  }
  if (msg.updates_size() > kMaxUpdatesPerMessage) return Status::Error("too many updates");
  if (msg.loads_size() > kMaxLoadsPerMessage) return Status::Error("too many load vectors");
  for (int i = 0; i < msg.updates_size(); ++i) {
    if (Status st = CheckUpdate(msg.updates(i), "update " + std::to_string(i)); !st.ok()) return st;
  }
  for (int i = 0; i < msg.loads_size(); ++i) {
    if (Status st = CheckLoad(msg.loads(i), "load " + std::to_string(i)); !st.ok()) return st;
  }
  if (msg.kind() == pb::SwimMessage::PING_REQ) {
    if (!IsValidNodeName(msg.target())) return Status::Error("ping-req: bad target");
    if (!IsValidAddress(msg.target_address())) return Status::Error("ping-req: bad target address");
  }
  if (msg.kind() == pb::SwimMessage::ACK && !msg.target().empty() && !IsValidNodeName(msg.target())) {
    return Status::Error("ack: bad target");
  }
  if (!msg.origin().empty() && !IsValidNodeName(msg.origin())) return Status::Error("bad origin");
  return Status::Ok();
}

}  // namespace roam
