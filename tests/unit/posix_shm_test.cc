// POSIX shared memory (/dev/shm/NAME) travels with its process tree
// (ckpt/image.h CarriedWithProcess): the dump refuses an object a process
// outside the tree holds, `roam ps` says "shm" for it, and the restore
// places the object's contents without ever writing over another user's
// file. These run on the real /dev/shm, as root.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "ckpt/checkpoint.h"
#include "ckpt/files.h"
#include "ckpt/image.h"
#include "ckpt/image_file.h"
#include "common/file_util.h"
#include "node/file_identity.h"

namespace roam {
namespace {

bool Contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// A name of its own in /dev/shm, removed at the end.
class PosixShm : public ::testing::Test {
 protected:
  void SetUp() override {
    name_ = "roam-unit-shm-" + std::to_string(getpid());
    path_ = "/dev/shm/" + name_;
    char tmpl[] = "/tmp/roam-shm-image-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    image_ = tmpl;
    unlink(path_.c_str());
  }
  void TearDown() override {
    if (child_ > 0) {
      kill(child_, SIGKILL);
      waitpid(child_, nullptr, 0);
    }
    unlink(path_.c_str());
    unlink((image_ + "/content-1.img").c_str());
    rmdir(image_.c_str());
  }
  // The image's saved contents of the object: `text`.
  pb::FileDesc Carried(const std::string& text, uid_t uid) {
    PayloadFileWriter w;
    EXPECT_TRUE(w.Open(image_ + "/content-1.img", ImageFileKind::kContent).ok());
    EXPECT_TRUE(w.Append(text.data(), text.size()).ok());
    EXPECT_TRUE(w.Finish().ok());
    pb::FileDesc d;
    d.set_kind(pb::FILE_REGULAR);
    d.set_path(path_);
    d.set_carried(true);
    d.set_content_file("content-1.img");
    d.set_mode(0640);
    d.set_uid(uid);
    d.set_gid(uid);
    return d;
  }
  // A child holding the object: open (fd) or only mapped; waits to be killed.
  pid_t HoldIt(bool mapped_only) {
    int ready[2];
    EXPECT_EQ(pipe(ready), 0);
    pid_t pid = fork();
    if (pid == 0) {
      // Only stdio and `ready`: a harness's pipe held open here and outside
      // would be a reason of its own ("pipe").
      const int keep = dup2(ready[1], 3);
      close_range(static_cast<unsigned>(keep) + 1, ~0U, 0);
      int fd = open(path_.c_str(), O_RDWR | O_CREAT, 0600);
      if (fd < 0 || ftruncate(fd, 4096) != 0) _exit(1);
      void* m = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      if (m == MAP_FAILED) _exit(1);
      if (mapped_only) close(fd);
      (void)!write(keep, "r", 1);
      close(keep);
      for (;;) pause();
    }
    char c;
    EXPECT_EQ(read(ready[0], &c, 1), 1);
    close(ready[0]);
    close(ready[1]);
    return pid;
  }
  std::string name_, path_, image_;
  pid_t child_ = 0;
};

TEST(PosixShmName, OnePlainNameInDevShmIsCarried) {
  EXPECT_TRUE(IsPosixSharedMemory("/dev/shm/psm_ca94afce"));
  EXPECT_TRUE(IsPosixSharedMemory("/dev/shm/sem.mp-1"));  // a named semaphore
  EXPECT_TRUE(CarriedWithProcess("/dev/shm/psm_ca94afce"));
  EXPECT_FALSE(IsPosixSharedMemory("/dev/shm/"));
  EXPECT_FALSE(IsPosixSharedMemory("/dev/shm/.."));
  EXPECT_FALSE(IsPosixSharedMemory("/dev/shm/dir/x"));
  EXPECT_FALSE(IsPosixSharedMemory("/dev/shmx"));
  EXPECT_FALSE(IsPosixSharedMemory("/run/shm/x"));
  EXPECT_FALSE(CarriedWithProcess("/dev/shm/a/b"));
}

TEST_F(PosixShm, PlacedWithItsContentsOwnerAndMode) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  ASSERT_TRUE(PlaceCarried(Carried("forty-two", 65534), image_).ok());
  struct stat st;
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 65534u);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(*ReadFile(path_), "forty-two");
}

TEST_F(PosixShm, TheOwnersOwnObjectLeftThereIsRewritten) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  int fd = open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "an older and longer content", 27), 27);
  ASSERT_EQ(fchown(fd, 65534, 65534), 0);
  close(fd);
  ASSERT_TRUE(PlaceCarried(Carried("new", 65534), image_).ok());
  EXPECT_EQ(*ReadFile(path_), "new");
}

TEST_F(PosixShm, AnotherUsersObjectOrALinkIsLeftAlone) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  int fd = open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "theirs", 6), 6);
  close(fd);  // root's
  Status st = PlaceCarried(Carried("mine", 65534), image_);
  EXPECT_FALSE(st.ok());
  EXPECT_TRUE(Contains(st.message(), "exists and is not 65534's")) << st.message();
  EXPECT_EQ(*ReadFile(path_), "theirs");

  unlink(path_.c_str());
  const std::string victim = image_ + "/victim";
  int v = open(victim.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(v, 0);
  ASSERT_EQ(write(v, "precious", 8), 8);
  close(v);
  ASSERT_EQ(symlink(victim.c_str(), path_.c_str()), 0);
  st = PlaceCarried(Carried("mine", 0), image_);
  EXPECT_FALSE(st.ok()) << "written through a link";
  EXPECT_EQ(*ReadFile(victim), "precious");
  unlink(victim.c_str());
}

TEST_F(PosixShm, AnObjectHeldOutsideTheTreeIsRefusedNamingTheHolder) {
  for (bool mapped_only : {false, true}) {
    child_ = HoldIt(mapped_only);
    pb::FileTable table;
    *table.add_files() = Carried("x", 0);
    Status st = CheckCarriedNotShared(table, {});
    EXPECT_FALSE(st.ok()) << (mapped_only ? "mapped" : "open");
    EXPECT_EQ(st.code(), StatusCode::kCantMove);
    EXPECT_TRUE(Contains(st.message(), path_ + " is shared with pid " + std::to_string(child_))) << st.message();
    EXPECT_TRUE(CheckCarriedNotShared(table, {child_}).ok()) << "the holder is of the tree";
    table.mutable_files(0)->set_carried(false);
    EXPECT_TRUE(CheckCarriedNotShared(table, {}).ok()) << "only carried objects are looked for";
    kill(child_, SIGKILL);
    waitpid(child_, nullptr, 0);
    child_ = 0;
  }
}

TEST_F(PosixShm, CantMoveSaysShmWhileAnotherProcessHoldsItToo) {
  child_ = HoldIt(/*mapped_only=*/true);
  pid_t other = HoldIt(/*mapped_only=*/false);
  EXPECT_EQ(CantMoveReason(child_), "shm");
  kill(other, SIGKILL);
  waitpid(other, nullptr, 0);
  EXPECT_EQ(CantMoveReason(child_), "") << "the tree's alone now";
}

TEST_F(PosixShm, AMoveListsItAsCarriedAndToBeAbsentOnTheTarget) {
  child_ = HoldIt(/*mapped_only=*/true);
  std::vector<std::string> carried;
  Result<std::vector<pb::FileIdentity>> files = TreeFileIdentities(child_, &carried);
  ASSERT_TRUE(files.ok()) << files.status().message();
  EXPECT_EQ(carried, std::vector<std::string>{path_});
  int absent = 0;
  for (const pb::FileIdentity& f : *files) absent += f.path() == path_ && f.absent();
  EXPECT_EQ(absent, 1);
  EXPECT_EQ(CheckFileIdentities(*files, "here"), path_ + " exists on here already (the process brings its own)");
}

}  // namespace
}  // namespace roam
