#include "node/job_env.h"

namespace roam {

std::string EnvValue(const pb::RunSpec& spec, const std::string& key) {
  const std::string prefix = key + "=";
  for (const std::string& e : spec.env()) {
    if (e.compare(0, prefix.size(), prefix) == 0) return e.substr(prefix.size());
  }
  return "";
}

bool AddJobTmpdir(const std::string& dir, pb::RunSpec* spec) {
  if (dir.empty()) return false;
  for (const std::string& e : spec->env()) {
    if (e.compare(0, 7, "TMPDIR=") == 0) return false;
  }
  spec->add_env("TMPDIR=" + dir);
  return true;
}

}  // namespace roam
