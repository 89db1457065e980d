// The pre-freeze check of a move (src/node/file_identity.h): the files a
// tree uses are listed on the source and must be on the target, the same
// size and mtime; the first that is not is named.
#include "node/file_identity.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <map>


namespace roam {
namespace {

// A fake file system for CheckFileIdentities.
std::map<std::string, struct stat> g_fs;
int FakeStat(const char* path, struct stat* st) {
  auto it = g_fs.find(path);
  if (it == g_fs.end()) return -1;
  *st = it->second;
  return 0;
}
struct stat File(off_t size, time_t mtime) {
  struct stat st {};
  st.st_mode = S_IFREG | 0644;
  st.st_size = size;
  st.st_mtim.tv_sec = mtime;
  return st;
}
struct stat Dir() {
  struct stat st {};
  st.st_mode = S_IFDIR | 0755;
  return st;
}
pb::FileIdentity Want(const std::string& path, uint64_t size, int64_t mtime_s) {
  pb::FileIdentity f;
  f.set_path(path);
  f.set_size(size);
  f.set_mtime_ns(mtime_s * 1000000000LL);
  return f;
}
pb::FileIdentity WantDir(const std::string& path) {
  pb::FileIdentity f;
  f.set_path(path);
  f.set_directory(true);
  return f;
}

TEST(FileIdentity, SameFilesPass) {
  g_fs = {{"/data/in.txt", File(100, 7)}, {"/work", Dir()}};
  EXPECT_EQ(CheckFileIdentities({Want("/data/in.txt", 100, 7), WantDir("/work")}, "n3", FakeStat), "");
}

TEST(FileIdentity, MissingFileIsNamed) {
  g_fs = {{"/work", Dir()}};
  EXPECT_EQ(CheckFileIdentities({WantDir("/work"), Want("/data/in.txt", 100, 7)}, "n3", FakeStat),
            "/data/in.txt is missing on n3");
}

TEST(FileIdentity, MissingDirectoryIsNamed) {
  g_fs = {};
  EXPECT_EQ(CheckFileIdentities({WantDir("/work")}, "n2", FakeStat), "directory /work is missing on n2");
}

TEST(FileIdentity, OtherSizeOrMtimeDiffers) {
  g_fs = {{"/lib/x.so", File(120, 7)}};
  EXPECT_EQ(CheckFileIdentities({Want("/lib/x.so", 100, 7)}, "n3", FakeStat),
            "/lib/x.so differs on n3 (size 100 at the source, 120 here)");
  g_fs = {{"/lib/x.so", File(100, 8)}};
  EXPECT_EQ(CheckFileIdentities({Want("/lib/x.so", 100, 7)}, "n3", FakeStat),
            "/lib/x.so differs on n3 (modified at another time)");
}

TEST(FileIdentity, AFileTheTreeWritesNeedsOnlyToExist) {
  g_fs = {{"/data/out.txt", File(430, 9)}};
  pb::FileIdentity out = Want("/data/out.txt", 426, 8);
  out.set_written(true);
  EXPECT_EQ(CheckFileIdentities({out}, "n2", FakeStat), "");
  g_fs = {};
  EXPECT_EQ(CheckFileIdentities({out}, "n2", FakeStat), "/data/out.txt is missing on n2");
}

TEST(FileIdentity, TheFailingPathIsGivenForTheSourceToLookAgain) {
  g_fs = {{"/work", Dir()}};
  std::string path;
  EXPECT_EQ(CheckFileIdentities({WantDir("/work"), Want("/tmp/sortA", 10, 1)}, "n3", FakeStat, &path),
            "/tmp/sortA is missing on n3");
  EXPECT_EQ(path, "/tmp/sortA");
}

TEST(FileIdentity, AListedFileChangedHereIsAStaleList) {
  const std::vector<pb::FileIdentity> sent = {Want("/tmp/sortA", 10, 1), Want("/lib/x.so", 100, 7)};
  g_fs = {{"/lib/x.so", File(100, 7)}};  // sortA deleted since it was listed
  EXPECT_TRUE(ListedFileChanged(sent, "/tmp/sortA", FakeStat));
  g_fs = {{"/tmp/sortA", File(99, 2)}, {"/lib/x.so", File(100, 7)}};  // replaced by another file of that name
  EXPECT_TRUE(ListedFileChanged(sent, "/tmp/sortA", FakeStat));
  EXPECT_FALSE(ListedFileChanged(sent, "/lib/x.so", FakeStat)) << "as listed: the target's own difference";
  EXPECT_FALSE(ListedFileChanged(sent, "/not/listed", FakeStat));
}

// POSIX shared memory goes with the process (CarriedWithProcess): the
// target must not have an object of that name, which the move would
// overwrite; the source's own copy is no stale list.
TEST(FileIdentity, ACarriedObjectMustBeAbsentOnTheTarget) {
  pb::FileIdentity shm;
  shm.set_path("/dev/shm/psm_1");
  shm.set_absent(true);
  g_fs = {};
  EXPECT_EQ(CheckFileIdentities({shm}, "n3", FakeStat), "");
  g_fs = {{"/dev/shm/psm_1", File(4096, 1)}};
  EXPECT_EQ(CheckFileIdentities({shm}, "n3", FakeStat),
            "/dev/shm/psm_1 exists on n3 already (the process brings its own)");
  EXPECT_FALSE(ListedFileChanged({shm}, "/dev/shm/psm_1", FakeStat));
}

TEST(FileIdentity, KindMustMatch) {
  g_fs = {{"/work", File(1, 1)}, {"/data", Dir()}};
  EXPECT_EQ(CheckFileIdentities({WantDir("/work")}, "n3", FakeStat), "/work is not a directory on n3");
  EXPECT_EQ(CheckFileIdentities({Want("/data", 1, 1)}, "n3", FakeStat), "/data is not a regular file on n3");
}

// The real lister on this very process: its cwd and its own executable are
// there, and the real check on the same machine passes; damaged, it fails.
TEST(FileIdentity, ThisProcessListsItsFilesAndTheyCheckHere) {
  Result<std::vector<pb::FileIdentity>> files = TreeFileIdentities(getpid());
  ASSERT_TRUE(files.ok()) << files.status().message();
  char cwd[4096], exe[4096];
  ASSERT_NE(getcwd(cwd, sizeof cwd), nullptr);
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  ASSERT_GT(n, 0);
  exe[n] = '\0';
  auto has = [&](const std::string& p) {
    return std::any_of(files->begin(), files->end(), [&](const pb::FileIdentity& f) { return f.path() == p; });
  };
  EXPECT_TRUE(has(cwd));
  EXPECT_TRUE(has(exe));
  EXPECT_EQ(CheckFileIdentities(*files, "here"), "");
  for (pb::FileIdentity& f : *files) {
    if (f.path() == exe) f.set_size(f.size() + 1);
  }
  EXPECT_NE(CheckFileIdentities(*files, "here").find("differs on here"), std::string::npos);
}

TEST(FileIdentity, FilesOpenForWritingAreMarked) {
  char path[] = "/tmp/roam-fid-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  Result<std::vector<pb::FileIdentity>> files = TreeFileIdentities(getpid());
  close(fd);
  unlink(path);
  ASSERT_TRUE(files.ok());
  auto it = std::find_if(files->begin(), files->end(), [&](const pb::FileIdentity& f) { return f.path() == path; });
  ASSERT_NE(it, files->end());
  EXPECT_TRUE(it->written());
}

TEST(FileIdentity, NoSuchProcessIsAnError) { EXPECT_FALSE(TreeFileIdentities(0x3fffffff).ok()); }

}  // namespace
}  // namespace roam
