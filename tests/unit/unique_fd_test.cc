// UniqueFd (src/common/unique_fd.h): one owner, closed exactly once.
#include "common/unique_fd.h"

#include <fcntl.h>
#include <gtest/gtest.h>

namespace roam {
namespace {

bool IsOpen(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

TEST(UniqueFd, ClosesWhenItGoesAndMovesOwnership) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  {
    UniqueFd a(p[0]);
    UniqueFd b(std::move(a));
    EXPECT_FALSE(a.ok());  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
    EXPECT_EQ(b.get(), p[0]);
    UniqueFd c;
    c = std::move(b);
    EXPECT_TRUE(IsOpen(p[0]));
  }
  EXPECT_FALSE(IsOpen(p[0]));
  UniqueFd w(p[1]);
  const int raw = w.release();
  EXPECT_FALSE(w.ok());
  EXPECT_TRUE(IsOpen(raw));  // released: not closed
  w.reset(raw);
  w.reset();
  EXPECT_FALSE(IsOpen(raw));
}

}  // namespace
}  // namespace roam
