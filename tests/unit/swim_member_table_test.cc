// MemberTable reads like the std::map<std::string, Member> it replaced, and
// a directory shared by two tables keeps each table's rows its own.
#include "cluster/member_table.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace roam {
namespace {

TEST(SwimMemberTable, FindAtCountSizeAndIterationSeeOnlyKnownMembers) {
  auto dir = std::make_shared<MemberDirectory>();
  const MemberId a = dir->Intern("a", "10.0.0.1:1"), b = dir->Intern("b", "10.0.0.2:1");
  const MemberId c = dir->Intern("c", "10.0.0.3:1");
  MemberTable t(dir);
  t.Insert(a, pb::ALIVE).incarnation = 5;
  t.Insert(c, pb::DEAD);
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(t.count("a"), 1u);
  EXPECT_EQ(t.count("b"), 0u) << "interned but not known";
  EXPECT_EQ(t.count("zz"), 0u);
  EXPECT_EQ(t.find("b"), t.end());
  EXPECT_EQ(t.at("a").incarnation, 5u);
  EXPECT_EQ(t.find("c")->second.address, "10.0.0.3:1");
  EXPECT_THROW(t.at("b"), std::out_of_range);
  std::vector<std::string> names;
  for (const auto& [name, m] : t) names.push_back(name + "=" + MemberStateName(m.state));
  EXPECT_EQ(names, (std::vector<std::string>{"a=alive", "c=dead"}));
  t.Erase(a);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.find("a"), t.end());
  EXPECT_EQ(t.Get(b), nullptr);
}

TEST(SwimMemberTable, TablesSharingADirectoryKeepTheirOwnRows) {
  auto dir = std::make_shared<MemberDirectory>();
  MemberTable one(dir), two(dir);
  const MemberId x = dir->Intern("x", "10.0.0.9:1");
  one.Insert(x, pb::SUSPECT);
  EXPECT_EQ(one.at("x").state, pb::SUSPECT);
  EXPECT_EQ(two.count("x"), 0u);
  EXPECT_EQ(dir->Intern("x", ""), x) << "an empty address leaves the known one";
  EXPECT_EQ(one.at("x").address, "10.0.0.9:1");
  // Rows refer to the directory's strings, which stay put as it grows.
  const std::string* name = &one.at("x").name;
  for (int i = 0; i < 10000; ++i) two.Insert(dir->Intern("m" + std::to_string(i), "10.1.0.1:1"), pb::ALIVE);
  EXPECT_EQ(&one.at("x").name, name);
  EXPECT_EQ(two.size(), 10000u);
  EXPECT_EQ(sizeof(Member), 48u);
}

}  // namespace
}  // namespace roam
