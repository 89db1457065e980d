// What a peer may write into a move's image directory (src/node/image_dir.h):
// plain ".img" names only, never a path, and the listing puts the inventory
// last (a reader sees a complete image only once it is there).
#include "node/image_dir.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>

namespace roam {
namespace {

TEST(ImageDir, AcceptsOnlyPlainImageNames) {
  EXPECT_TRUE(IsImageFileName("core-42.img"));
  EXPECT_TRUE(IsImageFileName("inventory.img"));
  EXPECT_FALSE(IsImageFileName("../etc/passwd.img"));
  EXPECT_FALSE(IsImageFileName("/tmp/x.img"));
  EXPECT_FALSE(IsImageFileName("a/b.img"));
  EXPECT_FALSE(IsImageFileName(".img"));
  EXPECT_FALSE(IsImageFileName(".hidden.img"));
  EXPECT_FALSE(IsImageFileName("core-42.txt"));
  EXPECT_FALSE(IsImageFileName(std::string("a\0b.img", 7)));
  EXPECT_FALSE(IsImageFileName(std::string(200, 'a') + ".img"));
}

TEST(ImageDir, ListsInventoryLastAndRemovesEverything) {
  char tmpl[] = "/tmp/roam-imgdir-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  for (const char* n : {"inventory.img", "core-1.img", "pages-1.img", "notes.txt"}) std::ofstream(dir + "/" + n) << "x";
  Result<std::vector<std::string>> names = ListImageFiles(dir);
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"core-1.img", "pages-1.img", "inventory.img"}));
  unlink((dir + "/notes.txt").c_str());
  RemoveImageDir(dir);
  EXPECT_NE(access(dir.c_str(), F_OK), 0);
}

}  // namespace
}  // namespace roam
