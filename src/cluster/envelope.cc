#include "cluster/envelope.h"

#include <sodium.h>

#include "cluster/swim_validate.h"

namespace roam {

namespace {
constexpr size_t kMaxTrackedSenders = 4096;
}

bool ReplayWindow::Accept(uint64_t seq) {
  if (seq > highest_) {
    uint64_t shift = seq - highest_;
    seen_ = shift >= 64 ? 0 : seen_ << shift;
    seen_ |= 1;
    highest_ = seq;
    return true;
  }
  uint64_t back = highest_ - seq;
  if (back >= 64) return false;
  uint64_t bit = uint64_t{1} << back;
  if (seen_ & bit) return false;
  seen_ |= bit;
  return true;
}

const char* DropReasonName(DropReason r) {
  switch (r) {
    case DropReason::kMalformed: return "malformed";
    case DropReason::kBadMac: return "bad MAC";
    case DropReason::kBadVersion: return "unsupported version";
    case DropReason::kWrongCluster: return "wrong cluster";
    case DropReason::kReplay: return "replayed";
    case DropReason::kInvalid: return "invalid content";
  }
  return "unknown";
}

Envelope::Envelope(std::string cluster, std::string self_name, std::optional<ClusterKey> key, uint64_t first_seq)
    : cluster_(std::move(cluster)), self_(std::move(self_name)), key_(std::move(key)), next_seq_(first_seq) {
  if (sodium_init() < 0) abort();  // only fails if the library is unusable
}

std::string Envelope::Seal(const pb::SwimMessage& body) {
  pb::Sealed sealed;
  sealed.set_version(kGossipVersion);
  sealed.set_cluster(cluster_);
  sealed.set_sender(self_);
  sealed.set_seq(next_seq_++);
  *sealed.mutable_body() = body;
  pb::Envelope env;
  sealed.SerializeToString(env.mutable_sealed());
  std::string mac(crypto_auth_BYTES, '\0');
  if (key_) {
    crypto_auth(reinterpret_cast<unsigned char*>(mac.data()),
                reinterpret_cast<const unsigned char*>(env.sealed().data()), env.sealed().size(),
                key_->bytes().data());
  }
  env.set_mac(std::move(mac));
  return env.SerializeAsString();
}

std::optional<DropReason> Envelope::Open(const std::string& datagram, Opened* out) {
  pb::Envelope env;
  if (datagram.size() > kMaxDatagram || !env.ParseFromString(datagram)) return DropReason::kMalformed;
  if (env.mac().size() != crypto_auth_BYTES) return DropReason::kMalformed;
  if (key_ && crypto_auth_verify(reinterpret_cast<const unsigned char*>(env.mac().data()),
                                 reinterpret_cast<const unsigned char*>(env.sealed().data()),
                                 env.sealed().size(), key_->bytes().data()) != 0) {
    return DropReason::kBadMac;
  }
  pb::Sealed sealed;
  if (!sealed.ParseFromString(env.sealed())) return DropReason::kMalformed;
  if (sealed.version() != kGossipVersion) return DropReason::kBadVersion;
  if (sealed.cluster() != cluster_) return DropReason::kWrongCluster;
  if (!IsValidNodeName(sealed.sender()) || sealed.sender() == self_) return DropReason::kInvalid;
  if (!sealed.has_body() || !ValidateSwimMessage(sealed.body()).ok() ||
      sealed.body().self().name() != sealed.sender()) {
    return DropReason::kInvalid;
  }
  if (windows_.size() >= kMaxTrackedSenders && !windows_.count(sealed.sender())) windows_.erase(windows_.begin());
  if (!windows_[sealed.sender()].Accept(sealed.seq())) return DropReason::kReplay;
  out->sender = sealed.sender();
  out->body = std::move(*sealed.mutable_body());
  return std::nullopt;
}

}  // namespace roam
