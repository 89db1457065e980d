#include "node/move_in_check.h"

#include <spdlog/spdlog.h>

#include "node/file_identity.h"
#include "node/precopy_sender.h"
#include "wire/reply.h"

namespace roam {

void AskSourceAgain(LinkSession& source, const std::string& why, const std::string& path,
                    std::function<void(pb::LinkFrame&)> on_frame, std::function<void(const std::string&)> on_closed) {
  source.set_handlers(std::move(on_frame), std::move(on_closed));
  pb::LinkFrame ask;
  SetReplyError(ask.mutable_reply(), Status::Error(StatusCode::kMismatch, why));
  ask.mutable_reply()->set_mismatch_path(path);
  source.Send(ask);
}

bool RelistIfStale(const pb::LinkReply& reply, LinkSession& target, const std::string& gpid, pid_t root,
                   std::vector<pb::FileIdentity>* sent, int* relists) {
  if (reply.mismatch_path().empty() || *relists >= kFileRechecks) return false;
  if (!ListedFileChanged(*sent, reply.mismatch_path())) return false;  // as listed here: it is the target's
  Result<std::vector<pb::FileIdentity>> files = TreeFileIdentities(root);
  if (!files.ok()) return false;
  ++*relists;
  spdlog::info("{}: {} changed since it was listed; listing the tree's files again", gpid, reply.mismatch_path());
  *sent = std::move(*files);
  target.Send(MoveInRequest(gpid, root, *sent));
  return true;
}

}  // namespace roam
