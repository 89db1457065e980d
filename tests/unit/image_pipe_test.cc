// The engine's image sinks: DirImageSink (`roam checkpoint -D`) and
// ImagePipe (a move's source streams the image as it is dumped): how writes
// become pieces, that a writer waits for room and is freed by Cancel, and
// that a real dump through the pipe, put back together the way a target
// does, is an image that loads and checks.
#include "node/image_pipe.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <map>
#include <string>
#include <thread>

#include "ckpt/checkpoint.h"
#include "ckpt/image.h"
#include "ckpt/image_sink.h"
#include "test_child.h"

namespace roam {
namespace {

std::string TempDir() {
  char tmpl[] = "/tmp/roam-sink-test.XXXXXX";
  return mkdtemp(tmpl);
}

void RemoveTree(const std::string& dir) { (void)system(("rm -rf '" + dir + "'").c_str()); }

bool Exists(const std::string& path) {
  struct stat sb;
  return stat(path.c_str(), &sb) == 0;
}

// ---- DirImageSink ----------------------------------------------------------------------

TEST(DirImageSink, OpenRemovesAStaleInventoryAndAbortWhatThisDumpWrote) {
  std::string dir = TempDir();
  int fd = open((dir + "/" + kInventoryFile).c_str(), O_WRONLY | O_CREAT, 0600);
  close(fd);
  fd = open((dir + "/notes.txt").c_str(), O_WRONLY | O_CREAT, 0600);
  close(fd);
  Result<std::unique_ptr<DirImageSink>> sink = DirImageSink::Open(dir, /*sync=*/true);
  ASSERT_TRUE(sink.ok()) << sink.status().message();
  EXPECT_FALSE(Exists(dir + "/" + kInventoryFile));
  ASSERT_TRUE((*sink)->Write("pages-1.img", 4096, "abcd", 4).ok());
  ASSERT_TRUE((*sink)->Write("pages-1.img", 0, "head", 4).ok());
  ASSERT_TRUE((*sink)->Close("pages-1.img").ok());
  ASSERT_TRUE((*sink)->Sync().ok());
  struct stat sb;
  ASSERT_EQ(stat((dir + "/pages-1.img").c_str(), &sb), 0);
  EXPECT_EQ(sb.st_size, 4100);
  (*sink)->Abort();
  EXPECT_FALSE(Exists(dir + "/pages-1.img"));
  EXPECT_TRUE(Exists(dir + "/notes.txt"));  // not this dump's
  RemoveTree(dir);
}

TEST(DirImageSink, AbortRemovesTheDirectoriesOpenMadeAndNothingAbove) {
  std::string top = TempDir();
  std::string dir = top + "/a/b/";  // a trailing slash, as a user types it
  Result<std::unique_ptr<DirImageSink>> sink = DirImageSink::Open(dir, /*sync=*/false);
  ASSERT_TRUE(sink.ok()) << sink.status().message();
  ASSERT_TRUE((*sink)->Write("core-1.img", 0, "x", 1).ok());
  ASSERT_TRUE(Exists(top + "/a/b/core-1.img"));
  (*sink)->Abort();
  EXPECT_FALSE(Exists(top + "/a"));
  EXPECT_TRUE(Exists(top));  // there before
  // A directory that was there stays, with what is not this dump's.
  ASSERT_EQ(mkdir((top + "/c").c_str(), 0700), 0);
  sink = DirImageSink::Open(top + "/c/d", /*sync=*/false);
  ASSERT_TRUE(sink.ok()) << sink.status().message();
  int fd = open((top + "/c/d/mine.txt").c_str(), O_WRONLY | O_CREAT, 0600);
  close(fd);
  (*sink)->Abort();
  EXPECT_TRUE(Exists(top + "/c/d/mine.txt"));  // d not empty: kept
  EXPECT_TRUE(Exists(top + "/c"));
  RemoveTree(top);
}

TEST(DirImageSink, AMissingParentIsAnErrorNamingThePath) {
  Result<std::unique_ptr<DirImageSink>> sink = DirImageSink::Open("/proc/1/no/such/dir", true);
  ASSERT_FALSE(sink.ok());
  EXPECT_NE(sink.status().message().find("/proc/1/no"), std::string::npos) << sink.status().message();
}

// ---- ImagePipe -------------------------------------------------------------------------

std::vector<ImagePipe::Piece> TakeAll(ImagePipe& pipe) {
  std::vector<ImagePipe::Piece> out;
  ImagePipe::Piece p;
  while (pipe.Take(&p)) out.push_back(std::move(p));
  return out;
}

TEST(ImagePipe, JoinsFollowingWritesIntoPiecesOfAtMostOneMiB) {
  ImagePipe pipe(64 << 20);
  std::string a(700 << 10, 'a'), b(700 << 10, 'b');
  ASSERT_TRUE(pipe.Write("pages-7.img", 4096, a.data(), a.size()).ok());
  ASSERT_TRUE(pipe.Write("pages-7.img", 4096 + a.size(), b.data(), b.size()).ok());
  ASSERT_TRUE(pipe.Write("pages-7.img", 0, "HEAD", 4).ok());  // does not follow: a new piece
  ASSERT_TRUE(pipe.Close("pages-7.img").ok());
  ASSERT_TRUE(pipe.Write("core-7.img", 0, "core", 4).ok());
  ASSERT_TRUE(pipe.Close("core-7.img").ok());
  std::vector<ImagePipe::Piece> got = TakeAll(pipe);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].name, "pages-7.img");
  EXPECT_EQ(got[0].offset, 4096u);
  EXPECT_EQ(got[0].data.size(), ImagePipe::kPieceMax);
  EXPECT_EQ(got[1].offset, 4096u + ImagePipe::kPieceMax);
  EXPECT_EQ(got[0].data + got[1].data, a + b);
  EXPECT_EQ(got[2].offset, 0u);
  EXPECT_EQ(got[2].data, "HEAD");
  EXPECT_EQ(got[3].name, "core-7.img");
  EXPECT_EQ(pipe.queued_bytes(), 0u);
}

TEST(ImagePipe, AbortDropsWhatIsQueued) {
  ImagePipe pipe;
  ASSERT_TRUE(pipe.Write("core-1.img", 0, "xyz", 3).ok());
  ASSERT_TRUE(pipe.Close("core-1.img").ok());
  pipe.Abort();
  EXPECT_TRUE(TakeAll(pipe).empty());
}

TEST(ImagePipe, AWriterWaitsForRoomAndCancelFreesIt) {
  ImagePipe pipe(64 << 10);
  std::atomic<int> wakes{0};
  pipe.set_wake([&] { ++wakes; });
  std::atomic<bool> done{false};
  Status result;
  std::thread writer([&] {
    std::string piece(32 << 10, 'p');
    Status st;
    for (int i = 0; st.ok() && i < 100; ++i) {
      std::string name = "content-" + std::to_string(i) + ".img";
      st = pipe.Write(name, 0, piece.data(), piece.size());
      if (st.ok()) st = pipe.Close(name);
    }
    result = st;
    done = true;
  });
  // It fills the pipe to its high water, then waits: it cannot write 100
  // pieces of 32 KiB into 64 KiB.
  auto filled = [&pipe] {
    for (int i = 0; i < 10000 && pipe.queued_bytes() < (64u << 10); ++i) usleep(1000);
    return pipe.queued_bytes() >= (64u << 10);
  };
  EXPECT_TRUE(filled());
  EXPECT_FALSE(done);
  // Taking makes room: it goes on, and fills the pipe again. (Exactly the
  // two pieces there: taking until empty races the writer, which refills as
  // fast as it is emptied, and may be taken down to its last piece.)
  ImagePipe::Piece got;
  EXPECT_TRUE(pipe.Take(&got));
  EXPECT_TRUE(pipe.Take(&got));
  EXPECT_TRUE(filled());
  EXPECT_FALSE(done);
  pipe.Cancel();
  writer.join();
  EXPECT_TRUE(done);
  EXPECT_FALSE(result.ok());
  EXPECT_NE(result.message().find("cancelled"), std::string::npos) << result.message();
  EXPECT_GE(wakes.load(), 1);
  // And a write after the cancel fails at once.
  EXPECT_FALSE(pipe.Write("x.img", 0, "x", 1).ok() && pipe.Close("x.img").ok());
}

// ---- a real dump through the pipe ----------------------------------------------------

// A child holding 3 MiB of numbered pages, until killed. Its fds are
// /dev/null only: whatever the test runner was given stays out of the dump.
pid_t StartHolder() {
  pid_t pid = fork();
  if (pid != 0) return pid;
  OnlyDevNullFds();
  constexpr size_t kSize = 3 << 20;
  char* p = static_cast<char*>(mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  for (size_t off = 0; off < kSize; off += 4096) memcpy(p + off, &off, sizeof(off));
  for (;;) pause();
}

// What a target's ImageReceiver does, on a thread of its own: takes the
// pieces out of `pipe` and writes them into their files in `dir`.
class Reassembler {
 public:
  Reassembler(ImagePipe& pipe, std::string dir) : pipe_(pipe), dir_(std::move(dir)), thread_([this] { Run(); }) {}
  ~Reassembler() { Stop(); }
  // Takes what is left, then ends.
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    for (auto& [name, fd] : fds_) close(fd);
    fds_.clear();
  }

 private:
  void Run() {
    ImagePipe::Piece p;
    for (;;) {
      if (!pipe_.Take(&p)) {
        if (stop_) return;
        usleep(200);
        continue;
      }
      int& fd = fds_[p.name];
      if (fd == 0) fd = open((dir_ + "/" + p.name).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      EXPECT_EQ(pwrite(fd, p.data.data(), p.data.size(), static_cast<off_t>(p.offset)),
                static_cast<ssize_t>(p.data.size()));
    }
  }

  ImagePipe& pipe_;
  std::string dir_;
  std::atomic<bool> stop_{false};
  std::map<std::string, int> fds_;
  std::thread thread_;
};

TEST(ImagePipe, ADumpStreamedThroughItIsAWholeImage) {
  pid_t pid = StartHolder();
  usleep(100000);
  std::string dir = TempDir();
  ImagePipe pipe(1 << 20);  // smaller than the image: the dump must wait for the reader
  Reassembler reader(pipe, dir);
  {
    Result<std::unique_ptr<FrozenTree>> tree = FrozenTree::Freeze(pid);
    ASSERT_TRUE(tree.ok()) << tree.status().message();
    Result<CheckpointReport> r = (*tree)->Dump(pipe);
    EXPECT_TRUE(r.ok()) << r.status().message();
    if (r.ok()) {
      EXPECT_GE(r->pages_saved, 768u);
      EXPECT_TRUE((*tree)->Seal().ok());
    }
    (*tree)->Resume();
  }
  reader.Stop();
  Result<Image> image = LoadImage(dir, /*verify_payloads=*/true);
  EXPECT_TRUE(image.ok()) << image.status().message();
  if (image.ok()) {
    EXPECT_TRUE(ValidateImage(*image).ok());
    ASSERT_EQ(image->procs.size(), 1u);
    EXPECT_EQ(image->procs[0].pid(), pid);
  }
  KillChild(pid);
  RemoveTree(dir);
}

TEST(ImagePipe, ACancelledPipeFailsTheDumpAndTheTreeRunsOn) {
  pid_t pid = StartHolder();
  usleep(100000);
  ImagePipe pipe(256 << 10);
  Result<std::unique_ptr<FrozenTree>> tree = FrozenTree::Freeze(pid);
  ASSERT_TRUE(tree.ok()) << tree.status().message();
  std::thread canceller([&] {
    while (pipe.queued_bytes() == 0) usleep(500);
    pipe.Cancel();  // nobody reads: the dump would wait forever
  });
  Result<CheckpointReport> r = (*tree)->Dump(pipe);
  canceller.join();
  EXPECT_FALSE(r.ok());
  if (!r.ok()) {
    EXPECT_NE(r.status().message().find("cancelled"), std::string::npos) << r.status().message();
  }
  (*tree)->Resume();
  tree->reset();
  usleep(10000);
  char state = 0;
  std::string stat_path = "/proc/" + std::to_string(pid) + "/stat";
  FILE* f = fopen(stat_path.c_str(), "r");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(fscanf(f, "%*d %*s %c", &state), 1);
  fclose(f);
  EXPECT_EQ(state, 'S');  // back in its pause(), not stopped, not traced
  KillChild(pid);
}

}  // namespace
}  // namespace roam
