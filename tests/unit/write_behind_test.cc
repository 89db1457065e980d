// WriteBehind (ckpt/write_behind.h) and PayloadFileWriter::AppendBehind:
// pieces written by the second thread land where they belong, the header's
// checksum is that of what was written, a failure comes back to the
// caller, and a sink without descriptors (a stream) gets plain writes in
// order. Real files in a temporary directory.
#include "ckpt/write_behind.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>

#include "ckpt/image_file.h"
#include "ckpt/image_sink.h"
#include "common/unique_fd.h"

namespace roam {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Batches of pages from two buffers used in turn, as the dump does: each
// buffer is overwritten as soon as the call after the one that queued it
// returns. Sizes straddle WriteBehind::kThreadBytes, so the first batches
// are written at once and the later ones by the thread.
std::string WriteInTurns(PayloadFileWriter& out) {
  std::string expected;
  std::vector<char> bufs[2] = {std::vector<char>(4 << 20), std::vector<char>(4 << 20)};
  const size_t sizes[] = {4096, 64 << 10, 2 << 20, 4 << 20, 12288, 3 << 20, 4 << 20};
  int which = 0;
  for (size_t n = 0; n < std::size(sizes); ++n) {
    std::vector<char>& b = bufs[which];
    for (size_t i = 0; i < sizes[n]; ++i) b[i] = static_cast<char>('a' + (n * 7 + i / 4096) % 26);
    // Two pieces with a gap between them, as kept pages around zero ones.
    const size_t half = sizes[n] / 2 / 4096 * 4096;
    std::vector<iovec> pieces = {{b.data(), half}, {b.data() + half + 4096, sizes[n] - half - 4096}};
    if (sizes[n] == 4096) pieces = {{b.data(), 4096}};
    for (const iovec& v : pieces) expected.append(static_cast<const char*>(v.iov_base), v.iov_len);
    EXPECT_TRUE(out.AppendBehind(pieces).ok());
    which ^= 1;
  }
  EXPECT_TRUE(out.Flush().ok());  // the buffers go
  return expected;
}

TEST(WriteBehind, PiecesLandInOrderAndTheChecksumIsTheirs) {
  char tmpl[] = "/tmp/roam-wb-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  DirImageSink sink(dir, /*sync=*/false);
  PayloadFileWriter out;
  ASSERT_TRUE(out.Open(&sink, "pages-1.img", ImageFileKind::kPages).ok());
  const std::string expected = WriteInTurns(out);
  Result<ImageFileHeader> h = out.Finish();
  ASSERT_TRUE(h.ok()) << h.status().message();
  EXPECT_EQ(h->payload_size, expected.size());
  const std::string path = dir + "/pages-1.img";
  EXPECT_EQ(ReadAll(path).substr(kPageHeaderSize), expected);
  Result<ImageFileHeader> checked = VerifyPayloadFile(path, ImageFileKind::kPages);
  EXPECT_TRUE(checked.ok()) << checked.status().message();
  unlink(path.c_str());
  rmdir(dir.c_str());
}

// A sink that keeps what it is given, in memory, and has no descriptors.
class MemorySink : public ImageSink {
 public:
  Status Write(const std::string& name, uint64_t offset, const void* data, size_t len) override {
    std::string& f = files[name];
    if (f.size() < offset + len) f.resize(offset + len);
    f.replace(offset, len, static_cast<const char*>(data), len);
    ++writes;
    return Status::Ok();
  }
  Status Close(const std::string&) override { return Status::Ok(); }
  Status Sync() override { return Status::Ok(); }
  void Abort() override {}
  std::string Where(const std::string& name) const override { return "memory:" + name; }
  std::map<std::string, std::string> files;
  int writes = 0;
};

TEST(WriteBehind, AStreamGetsPlainWrites) {
  MemorySink sink;
  PayloadFileWriter out;
  ASSERT_TRUE(out.Open(&sink, "pages-1.img", ImageFileKind::kPages).ok());
  const std::string expected = WriteInTurns(out);
  ASSERT_TRUE(out.Finish().ok());
  EXPECT_EQ(sink.files["pages-1.img"].substr(kPageHeaderSize), expected);
  EXPECT_EQ(sink.writes, 1 + 13);  // the header, and each piece
}

TEST(WriteBehind, AFailureComesBack) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);  // positional writes to a pipe fail (ESPIPE)
  UniqueFd r(p[0]), w(p[1]);
  std::vector<char> big(WriteBehind::kThreadBytes, 'x');
  {
    WriteBehind wb(w.get(), "the pipe");
    Status st = wb.Queue({{big.data(), 4096}}, 0);  // small: written at once
    EXPECT_FALSE(st.ok());
    EXPECT_NE(st.message().find("write the pipe"), std::string::npos) << st.message();
  }
  WriteBehind wb(w.get(), "the pipe");
  EXPECT_TRUE(wb.Queue({{big.data(), big.size()}}, 0).ok());  // behind: fails later
  Status st = wb.Wait();
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("write the pipe"), std::string::npos) << st.message();
  EXPECT_FALSE(wb.Queue({{big.data(), big.size()}}, 0).ok());  // and stays failed
}

// A user at its RLIMIT_NPROC cannot make a thread: everything is written
// at once instead (std::thread would have thrown out of the dump).
TEST(WriteBehind, NoThreadNoMatter) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to become nobody";
  char path[] = "/tmp/roam-wb-nothread-XXXXXX";
  UniqueFd fd(mkstemp(path));
  ASSERT_TRUE(fd.ok());
  std::vector<char> big(3 * WriteBehind::kThreadBytes, 'q');
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    rlimit one{1, 1};  // this process alone: no thread more
    if (setgid(65534) != 0 || setuid(65534) != 0 || setrlimit(RLIMIT_NPROC, &one) != 0) _exit(2);
    WriteBehind wb(fd.get(), path);
    if (!wb.Queue({{big.data(), big.size()}}, 0).ok()) _exit(3);
    if (!wb.Queue({{big.data(), 4096}}, big.size()).ok() || !wb.Wait().ok()) _exit(4);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  unlink(path);
  ASSERT_TRUE(WIFEXITED(status)) << "the child died of signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  struct stat sb;
  ASSERT_EQ(fstat(fd.get(), &sb), 0);
  EXPECT_EQ(static_cast<size_t>(sb.st_size), big.size() + 4096);
}

}  // namespace
}  // namespace roam
