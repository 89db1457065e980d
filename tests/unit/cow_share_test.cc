// CowStage: regions of whole private mappings around the pages children
// share with their parents; each seed's copy prepared with its own pages.
#include "ckpt/cow_share.h"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace roam {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kA = 0x7f0000000000;
constexpr uint64_t kB = 0x7f0000100000;

RangeSet Pages(uint64_t base, int from, int to) { return RangeSet({{base + from * kPage, base + to * kPage}}); }

class CowStageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/roam-cow-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    image_.dir = dir_;
  }
  void TearDown() override {
    for (auto& [pid, fd] : fds_) close(fd);
    std::filesystem::remove_all(dir_);
  }

  // A process with a private anonymous mapping of `pages` pages at `base`;
  // `saved` pages (index, fill byte) in its page file, `inherited` indexes.
  void AddProcess(pid_t pid, pid_t ppid, uint64_t base, int pages, const std::vector<std::pair<int, char>>& saved,
                  const std::vector<int>& inherited) {
    pb::ProcessImage p;
    p.set_pid(pid);
    p.set_ppid(ppid);
    pb::Vma* v = p.add_vmas();
    v->set_start(base);
    v->set_end(base + pages * kPage);
    v->set_prot(3);
    v->set_kind(pb::VMA_ANON_PRIVATE);
    p.set_pages_file("pages-" + std::to_string(pid) + ".img");
    std::string file(kPage, 'H');  // a header's room: offsets count from the file's start
    for (auto [index, fill] : saved) {
      pb::PageRun* r = p.add_pages();
      r->set_vaddr(base + static_cast<uint64_t>(index) * kPage);
      r->set_npages(1);
      r->set_offset(file.size());
      file += std::string(kPage, fill);
    }
    for (int index : inherited) {
      pb::PageRun* r = p.add_inherited();
      r->set_vaddr(base + static_cast<uint64_t>(index) * kPage);
      r->set_npages(1);
    }
    const std::string path = dir_ + "/" + p.pages_file();
    int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, file.data(), file.size()), static_cast<ssize_t>(file.size()));
    fds_[pid] = fd;
    image_.procs.push_back(p);
  }

  std::string dir_;
  Image image_;
  std::map<pid_t, int> fds_;
};

TEST_F(CowStageTest, RegionsAreWholeMappingsTakenByEveryProcessInThem) {
  AddProcess(100, 1, kA, 4, {{0, 'a'}, {1, 'b'}}, {});
  AddProcess(101, 100, kA, 4, {}, {0, 1});
  AddProcess(102, 100, kA, 6, {{5, 'z'}}, {1});   // its mapping grew after the fork
  AddProcess(103, 100, kB, 2, {{0, 'q'}}, {});    // elsewhere, sharing nothing
  CowStage stage;
  ASSERT_TRUE(stage.Stage(image_).ok());
  ASSERT_EQ(stage.pieces().size(), 1u);
  const StagedPiece& r = stage.pieces()[0];
  EXPECT_EQ(r.vaddr, kA);
  EXPECT_EQ(r.len, 6 * kPage) << "grown over the whole mapping of 102";
  EXPECT_EQ(r.also, (std::vector<pid_t>{100, 101, 102}));
  EXPECT_EQ(stage.FromStaged(100), Pages(kA, 0, 4));
  EXPECT_EQ(stage.FromStaged(101), Pages(kA, 0, 4));
  EXPECT_EQ(stage.FromStaged(102), Pages(kA, 0, 6));
  EXPECT_TRUE(stage.FromStaged(103).empty());
}

TEST_F(CowStageTest, EachSeedsCopyGetsItsOwnPagesKeepsWhatItSharesAndDropsTheRest) {
  AddProcess(100, 1, kA, 4, {{0, 'a'}, {2, 'c'}}, {});
  AddProcess(101, 100, kA, 4, {{1, 'x'}}, {0});  // page 2: neither saved nor shared, empty
  CowStage stage;
  ASSERT_TRUE(stage.Stage(image_).ok());
  ASSERT_EQ(stage.pieces().size(), 1u);
  const char* at = reinterpret_cast<const char*>(stage.pieces()[0].at);
  // The root seed, then (here in the same memory, as its child's copy would
  // be after the fork) the child's.
  ASSERT_TRUE(PrepareSharedRegions(image_.procs[0], stage.pieces(), fds_[100]).ok());
  EXPECT_EQ(at[0], 'a');
  EXPECT_EQ(at[kPage], 0);
  EXPECT_EQ(at[2 * kPage + 7], 'c');
  ASSERT_TRUE(PrepareSharedRegions(image_.procs[1], stage.pieces(), fds_[101]).ok());
  EXPECT_EQ(at[0], 'a') << "shared with its parent: kept";
  EXPECT_EQ(at[kPage + 100], 'x') << "its own";
  EXPECT_EQ(at[2 * kPage + 7], 0) << "neither: empty";
}

TEST_F(CowStageTest, RefusesSharedPagesItsParentHasNoPrivateMappingFor) {
  AddProcess(100, 1, kA, 2, {{0, 'a'}}, {});
  AddProcess(101, 100, kA, 4, {}, {3});
  CowStage stage;
  Status st = stage.Stage(image_);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("no private mapping"), std::string::npos) << st.message();
}

TEST_F(CowStageTest, RefusesPagesSharedWithAParentOutsideTheImage) {
  AddProcess(101, 100, kA, 1, {}, {0});
  CowStage stage;
  Status st = stage.Stage(image_);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("parent outside the image"), std::string::npos) << st.message();
}

TEST_F(CowStageTest, NothingSharedStagesNothing) {
  AddProcess(100, 1, kA, 1, {{0, 'a'}}, {});
  AddProcess(101, 100, kA, 1, {{0, 'b'}}, {});
  CowStage stage;
  ASSERT_TRUE(stage.Stage(image_).ok());
  EXPECT_TRUE(stage.pieces().empty());
  EXPECT_TRUE(stage.FromStaged(100).empty());
}

}  // namespace
}  // namespace roam
