// ParseLockLine (ckpt/file_locks.h): the "lock:" lines of fdinfo as Linux
// 6.18 writes them, and a real lock read back from this process's fdinfo.
#include "ckpt/file_locks.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "common/file_util.h"
#include "common/proc_fdinfo.h"

namespace roam {
namespace {

TEST(ParseLockLine, TheThreeKinds) {
  Result<pb::FileLock> f = ParseLockLine("1: FLOCK  ADVISORY  WRITE 14418 fe:00:10954064 0 EOF");
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->kind(), pb::FileLock::FLOCK);
  EXPECT_TRUE(f->write());
  Result<pb::FileLock> p = ParseLockLine("2: POSIX  ADVISORY  READ 14418 fe:00:10954089 5 14");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->kind(), pb::FileLock::POSIX);
  EXPECT_FALSE(p->write());
  EXPECT_EQ(p->start(), 5u);
  EXPECT_EQ(p->length(), 10u);
  Result<pb::FileLock> o = ParseLockLine("1: OFDLCK ADVISORY  WRITE -1 fe:00:10954112 100 EOF");
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->kind(), pb::FileLock::OFD);
  EXPECT_EQ(o->start(), 100u);
  EXPECT_EQ(o->length(), 0u);  // to the end, however long
}

TEST(ParseLockLine, LeasesAreRefusedAndNonsenseIsAnError) {
  Result<pb::FileLock> lease = ParseLockLine("1: LEASE  ACTIVE    READ 77 fe:00:12 0 EOF");
  ASSERT_FALSE(lease.ok());
  EXPECT_EQ(lease.status().code(), StatusCode::kCantMove);
  for (const char* bad :
       {"", "1: POSIX", "1: POSIX  ADVISORY  WRITE 1 fe:00:1 9 5", "1: POSIX  ADVISORY  BOTH 1 fe:00:1 0 5",
        "1: POSIX  ADVISORY  WRITE 1 fe:00:1 x 5", "POSIX  ADVISORY  WRITE 1 fe:00:1 0 5 EOF"}) {
    Result<pb::FileLock> r = ParseLockLine(bad);
    EXPECT_FALSE(r.ok()) << "'" << bad << "'";
    if (!r.ok()) {
      EXPECT_NE(r.status().code(), StatusCode::kCantMove) << bad;
    }
  }
}

TEST(ParseFdinfo, KeepsLockLines) {
  Result<FdInfo> info = ParseFdinfo(
      "pos:\t0\nflags:\t02100002\nmnt_id:\t27\nino:\t5\n"
      "lock:\t1: POSIX  ADVISORY  WRITE 14418 fe:00:5 5 14\nlock:\t2: POSIX  ADVISORY  READ 14418 fe:00:5 100 EOF\n");
  ASSERT_TRUE(info.ok()) << info.status().message();
  ASSERT_EQ(info->locks.size(), 2u);
  EXPECT_EQ(info->locks[1], "2: POSIX  ADVISORY  READ 14418 fe:00:5 100 EOF");
}

// What the dump does with each fd (checkpoint.cc DumpOne): a real lock,
// read back from this process's fdinfo.
TEST(ParseLockLine, ARealLockFromFdinfo) {
  char path[] = "/tmp/roam-locks-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  unlink(path);
  auto locks = [fd] {
    Result<std::string> text = ReadFile("/proc/self/fdinfo/" + std::to_string(fd));
    EXPECT_TRUE(text.ok());
    Result<FdInfo> info = ParseFdinfo(text.ok() ? *text : "");
    EXPECT_TRUE(info.ok()) << info.status().message();
    return info.ok() ? info->locks : std::vector<std::string>{};
  };
  EXPECT_TRUE(locks().empty());
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 8;
  fl.l_len = 4;
  ASSERT_EQ(fcntl(fd, F_SETLK, &fl), 0);
  std::vector<std::string> lines = locks();
  ASSERT_EQ(lines.size(), 1u);
  Result<pb::FileLock> l = ParseLockLine(lines[0]);
  ASSERT_TRUE(l.ok()) << l.status().message();
  EXPECT_EQ(l->kind(), pb::FileLock::POSIX);
  EXPECT_TRUE(l->write());
  EXPECT_EQ(l->start(), 8u);
  EXPECT_EQ(l->length(), 4u);
  close(fd);
}

}  // namespace
}  // namespace roam
