// The environment a home gives its jobs (src/node/job_env.h).
#include "node/job_env.h"

#include <gtest/gtest.h>

namespace roam {
namespace {

pb::RunSpec Spec(std::initializer_list<const char*> env) {
  pb::RunSpec s;
  for (const char* e : env) s.add_env(e);
  return s;
}

TEST(JobEnv, TmpdirIsAddedOnlyWhenConfiguredAndTheUserHasNone) {
  pb::RunSpec s = Spec({"HOME=/home/ana", "TMPDIRX=/no", "PATH=/usr/bin"});
  EXPECT_TRUE(AddJobTmpdir("/shared/tmp", &s));
  EXPECT_EQ(EnvValue(s, "TMPDIR"), "/shared/tmp");
  EXPECT_EQ(EnvValue(s, "TMPDIRX"), "/no");
  EXPECT_EQ(s.env_size(), 4);
  EXPECT_FALSE(AddJobTmpdir("/shared/tmp", &s));  // once
  EXPECT_EQ(s.env_size(), 4);

  pb::RunSpec own = Spec({"TMPDIR=/scratch/ana"});  // the user's choice wins
  EXPECT_FALSE(AddJobTmpdir("/shared/tmp", &own));
  EXPECT_EQ(EnvValue(own, "TMPDIR"), "/scratch/ana");

  pb::RunSpec none = Spec({"HOME=/home/ana"});  // not configured
  EXPECT_FALSE(AddJobTmpdir("", &none));
  EXPECT_EQ(EnvValue(none, "TMPDIR"), "");
}

}  // namespace
}  // namespace roam
