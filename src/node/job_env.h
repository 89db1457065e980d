// What a home adds to the environment of the jobs it starts (RunSpec.env,
// "KEY=VALUE" entries as the user's `roam run` sent them). Pure functions.
#pragma once

#include <string>

#include "session.pb.h"

namespace roam {

// The value of `key` in the spec's environment, or "" if it has none.
std::string EnvValue(const pb::RunSpec& spec, const std::string& key);

// roamd.conf job_tmpdir: sets TMPDIR=`dir` unless `dir` is empty or the
// user's environment names a TMPDIR of its own (an explicit choice wins).
// Returns whether it added it.
bool AddJobTmpdir(const std::string& dir, pb::RunSpec* spec);

}  // namespace roam
