// The first exchange of a move (move_in): the source lists the files its
// tree uses (file_identity.h), the target checks them before anything is
// frozen. A process that deletes or replaces files as it runs (sort's spill
// files, a compiler's temporaries) may do so between the list and the
// check; the target then asks again instead of refusing at once
// (LinkReply.mismatch_path), and the source lists again if that file has
// changed here too. A file that is simply not on the target still refuses
// the move, with its name.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "link.pb.h"
#include "node/link_mux.h"

namespace roam {

// The target, for the file `path` not here as listed (`why`): asks the
// source to look again; its answer (a new move_in, or its reason for
// giving up) goes to `on_frame`.
void AskSourceAgain(LinkSession& source, const std::string& why, const std::string& path,
                    std::function<void(pb::LinkFrame&)> on_frame, std::function<void(const std::string&)> on_closed);

// The source, refused with `reply`: if the file it names is no longer here
// as `sent` listed it, lists `root`'s tree again into `sent`, sends the new
// move_in for `gpid` on `target` and returns true (at most kFileRechecks
// times, counted in `relists`). False: the refusal stands.
bool RelistIfStale(const pb::LinkReply& reply, LinkSession& target, const std::string& gpid, pid_t root,
                   std::vector<pb::FileIdentity>* sent, int* relists);

}  // namespace roam
