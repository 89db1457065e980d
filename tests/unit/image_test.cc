// The checkpoint image reader: what the writers write reads back equal, and
// anything damaged, foreign, newer or inconsistent is refused with one error
// that names the file and what is wrong (src/ckpt/image_file.h, image.h).
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/user.h>
#include <unistd.h>
#include <xxhash.h>

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "ckpt/image.h"
#include "ckpt/image_file.h"
#include "common/file_util.h"

namespace roam {
namespace {


constexpr uint64_t kPage = 4096;

// A fresh directory under /tmp, removed with its contents at the end.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/roam_image_test.XXXXXX";
    if (mkdtemp(tmpl) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  bool ok() const { return !path_.empty(); }
  std::string File(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// "" when `st` is ok, else its message: gtest prints it on a failure.
std::string Error(const Status& st) { return st.ok() ? "" : st.message(); }

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

pb::Inventory SmallInventory() {
  pb::Inventory inv;
  inv.set_image_version(kImageVersion);
  inv.set_arch("x86_64");
  inv.set_root_pid(42);
  inv.add_pids(42);
  return inv;
}

// The bytes WriteRecordFile writes for `m`.
std::string WrittenRecord(const TempDir& dir, ImageFileKind kind, const google::protobuf::MessageLite& m) {
  std::string path = dir.File("record.img");
  Result<ImageFileHeader> h = WriteRecordFile(path, kind, m);
  EXPECT_TRUE(h.ok()) << h.status().message();
  Result<std::string> bytes = ReadFile(path);
  EXPECT_TRUE(bytes.ok()) << bytes.status().message();
  return bytes.ok() ? *bytes : std::string();
}

ImageFileHeader HeaderOf(const std::string& file) {
  ImageFileHeader h;
  memcpy(&h, file.data(), sizeof(h));
  return h;
}

std::string WithHeader(std::string file, const ImageFileHeader& h) {
  memcpy(file.data(), &h, sizeof(h));
  return file;
}

// The error ParseRecordBytes gives for `file` read as an inventory; "" if it is accepted.
std::string InventoryError(const std::string& file) {
  pb::Inventory inv;
  return Error(ParseRecordBytes("inventory.img", file, ImageFileKind::kInventory, &inv));
}

class ImageFile : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    file_ = WrittenRecord(dir_, ImageFileKind::kInventory, SmallInventory());
    ASSERT_GT(file_.size(), sizeof(ImageFileHeader));
    ASSERT_EQ(InventoryError(file_), "");
  }

  TempDir dir_;
  std::string file_;  // a small inventory as WriteRecordFile writes it
};

// ---- record files ----------------------------------------------------------------------

TEST_F(ImageFile, RecordWrittenReadsBackEqual) {
  pb::ProcessImage p;
  p.set_pid(4242);
  p.set_comm("app");
  p.set_gpregs(std::string(sizeof(user_regs_struct), '\x5a'));
  p.add_vmas()->set_start(0x400000);
  p.add_fds()->set_file_id(3);
  std::string path = dir_.File("core-4242.img");
  Result<ImageFileHeader> h = WriteRecordFile(path, ImageFileKind::kProcess, p);
  ASSERT_TRUE(h.ok()) << h.status().message();

  std::string payload = p.SerializeAsString();
  EXPECT_EQ(memcmp(h->magic, kImageMagic, sizeof(kImageMagic)), 0);
  EXPECT_EQ(h->version, kImageVersion);
  EXPECT_EQ(h->kind, static_cast<uint32_t>(ImageFileKind::kProcess));
  EXPECT_EQ(h->arch, kImageArchX86_64);
  EXPECT_EQ(h->header_size, kRecordHeaderSize);
  EXPECT_EQ(h->payload_size, payload.size());
  EXPECT_EQ(h->payload_xxh3, XXH3_64bits(payload.data(), payload.size()));
  struct stat sb;
  ASSERT_EQ(stat(path.c_str(), &sb), 0);
  EXPECT_EQ(static_cast<uint64_t>(sb.st_size), kRecordHeaderSize + payload.size());

  pb::ProcessImage back;
  ASSERT_EQ(Error(ReadRecordFile(path, ImageFileKind::kProcess, &back)), "");
  EXPECT_EQ(p.SerializeAsString(), back.SerializeAsString());
}

// Names the kernel gives are bytes, not UTF-8 text: a process holding a
// file named in Latin-1 was dumped (and killed) into an image whose
// records protobuf refused to parse again (fields of type string).
TEST_F(ImageFile, NamesThatAreNotUtf8ReadBack) {
  const std::string latin1 = "/home/r\xe9my/caf\xe9.txt";
  pb::ProcessImage p;
  p.set_comm("\xff\xfe");
  p.set_cwd(latin1);
  p.set_root(latin1);
  p.add_vmas()->set_name(latin1);
  p.add_threads()->set_comm("\xe9");
  pb::FileTable t;
  pb::FileDesc* d = t.add_files();
  d->set_path(latin1);
  d->add_watches()->set_path(latin1);
  t.add_shmems()->set_memfd_name("\xe9");
  for (const google::protobuf::MessageLite* m : std::initializer_list<const google::protobuf::MessageLite*>{&p, &t}) {
    std::string path = dir_.File("record.img");
    ASSERT_TRUE(WriteRecordFile(path, ImageFileKind::kProcess, *m).ok());
    std::unique_ptr<google::protobuf::MessageLite> back(m->New());
    ASSERT_EQ(Error(ReadRecordFile(path, ImageFileKind::kProcess, back.get())), "");
    EXPECT_EQ(back->SerializeAsString(), m->SerializeAsString());
  }
}

TEST_F(ImageFile, RefusesEveryBitFlip) {
  for (size_t byte = 0; byte < file_.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string flipped = file_;
      flipped[byte] = static_cast<char>(flipped[byte] ^ (1 << bit));
      std::string err = InventoryError(flipped);
      ASSERT_NE(err, "") << "byte " << byte << " bit " << bit << " flipped and accepted";
      EXPECT_EQ(err.rfind("inventory.img: ", 0), 0u) << err;
      if (byte >= sizeof(ImageFileHeader)) {
        EXPECT_TRUE(Contains(err, "checksum mismatch")) << err;
      }
    }
  }
}

TEST_F(ImageFile, RefusesEveryTruncation) {
  for (size_t len = 0; len < file_.size(); ++len) {
    std::string err = InventoryError(file_.substr(0, len));
    ASSERT_NE(err, "") << "cut to " << len << " bytes and accepted";
    EXPECT_TRUE(Contains(err, "truncated")) << err;
  }
  // And on disk, where ReadRecordFile names the path.
  std::string path = dir_.File("inventory.img");
  ASSERT_EQ(Error(WriteFileAtomic(path, file_.substr(0, file_.size() - 1))), "");
  pb::Inventory inv;
  std::string err = Error(ReadRecordFile(path, ImageFileKind::kInventory, &inv));
  EXPECT_TRUE(Contains(err, path + ": truncated")) << err;
}

TEST_F(ImageFile, RefusesTrailingBytes) {
  std::string err = InventoryError(file_ + '\0');
  EXPECT_TRUE(Contains(err, "truncated or padded")) << err;
}

TEST_F(ImageFile, RefusesWrongMagic) {
  std::string crit = file_;
  memcpy(crit.data(), "CRIMGv1\n", 8);
  std::string err = InventoryError(crit);
  EXPECT_TRUE(Contains(err, "not a roam image file")) << err;
  EXPECT_TRUE(Contains(InventoryError(std::string(file_.size(), '\0')), "not a roam image file"));
}

TEST_F(ImageFile, RefusesNewerVersionAsSuch) {
  ImageFileHeader h = HeaderOf(file_);
  h.version = kImageVersion + 1;  // the payload and its checksum are untouched
  std::string err = InventoryError(WithHeader(file_, h));
  EXPECT_TRUE(Contains(err, "newer")) << err;
}

TEST_F(ImageFile, RefusesVersionZero) {
  ImageFileHeader h = HeaderOf(file_);
  h.version = 0;
  std::string err = InventoryError(WithHeader(file_, h));
  EXPECT_TRUE(Contains(err, "bad image format version 0")) << err;
}

TEST_F(ImageFile, RefusesForeignArchitecture) {
  ImageFileHeader h = HeaderOf(file_);
  h.arch = 183;  // EM_AARCH64
  std::string err = InventoryError(WithHeader(file_, h));
  EXPECT_TRUE(Contains(err, "foreign architecture")) << err;
  EXPECT_TRUE(Contains(err, "183")) << err;
}

TEST_F(ImageFile, RefusesRecordOfAnotherKind) {
  std::string table = WrittenRecord(dir_, ImageFileKind::kFileTable, pb::FileTable());
  pb::ProcessImage p;
  std::string err = Error(ParseRecordBytes("core-1.img", table, ImageFileKind::kProcess, &p));
  EXPECT_TRUE(Contains(err, "holds a file table record where a process was expected")) << err;
}

TEST_F(ImageFile, RefusesPageHeaderSizeOnARecord) {
  ImageFileHeader h = HeaderOf(file_);
  h.header_size = kPageHeaderSize;
  std::string err = InventoryError(WithHeader(file_, h));
  EXPECT_TRUE(Contains(err, "bad header size")) << err;
}

TEST_F(ImageFile, RefusesReservedHeaderBytesSet) {
  ImageFileHeader h = HeaderOf(file_);
  h.reserved[23] = 1;
  std::string err = InventoryError(WithHeader(file_, h));
  EXPECT_TRUE(Contains(err, "reserved")) << err;
}

TEST_F(ImageFile, RefusesUndecodablePayloadWithAGoodChecksum) {
  std::string payload = "\xff\xff\xff\xff";  // a field number of 0x0fffffff and wire type 7
  ImageFileHeader h = HeaderOf(file_);
  h.payload_size = payload.size();
  h.payload_xxh3 = XXH3_64bits(payload.data(), payload.size());
  std::string file = WithHeader(file_.substr(0, sizeof(h)), h) + payload;
  std::string err = InventoryError(file);
  EXPECT_TRUE(Contains(err, "protobuf decoding failed")) << err;
}

// ---- payload files -------------------------------------------------------------------------

class ImagePayload : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    for (int i = 0; i < 3; ++i) data_ += std::string(kPage, static_cast<char>('a' + i));
    path_ = dir_.File("pages-1.img");
    PayloadFileWriter w;
    ASSERT_EQ(Error(w.Open(path_, ImageFileKind::kPages)), "");
    Result<uint64_t> first = w.Append(data_.data(), 2 * kPage);
    Result<uint64_t> second = w.Append(data_.data() + 2 * kPage, kPage);
    ASSERT_TRUE(first.ok() && second.ok());
    EXPECT_EQ(*first, kPageHeaderSize);  // pages start 4 KiB-aligned, after the header
    EXPECT_EQ(*second, kPageHeaderSize + 2 * kPage);
    Result<ImageFileHeader> h = w.Finish();
    ASSERT_TRUE(h.ok()) << h.status().message();
    written_ = *h;
  }

  // Overwrites one byte of the file at `offset`.
  void Poke(uint64_t offset, char c) {
    int fd = open(path_.c_str(), O_WRONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(pwrite(fd, &c, 1, static_cast<off_t>(offset)), 1);
    close(fd);
  }

  TempDir dir_;
  std::string data_;  // three pages
  std::string path_;
  ImageFileHeader written_;
};

TEST_F(ImagePayload, WrittenFileVerifies) {
  EXPECT_EQ(written_.payload_size, data_.size());
  EXPECT_EQ(written_.payload_xxh3, XXH3_64bits(data_.data(), data_.size()));
  EXPECT_EQ(written_.header_size, kPageHeaderSize);
  Result<ImageFileHeader> h = VerifyPayloadFile(path_, ImageFileKind::kPages);
  ASSERT_TRUE(h.ok()) << h.status().message();
  EXPECT_EQ(memcmp(&*h, &written_, sizeof(written_)), 0);
  Result<std::string> bytes = ReadFile(path_);
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(bytes->substr(kPageHeaderSize), data_);
}

TEST_F(ImagePayload, CatchesAFlippedPayloadByte) {
  for (uint64_t at : {uint64_t{0}, kPage - 1, kPage, 2 * kPage + 17, 3 * kPage - 1}) {
    uint64_t offset = kPageHeaderSize + at;
    Poke(offset, static_cast<char>(data_[at] ^ 0x01));
    Result<ImageFileHeader> h = VerifyPayloadFile(path_, ImageFileKind::kPages);
    ASSERT_FALSE(h.ok()) << "flipped byte " << at << " of the payload not caught";
    EXPECT_TRUE(Contains(h.status().message(), path_ + ": checksum mismatch")) << h.status().message();
    Poke(offset, data_[at]);
    ASSERT_TRUE(VerifyPayloadFile(path_, ImageFileKind::kPages).ok());
  }
}

TEST_F(ImagePayload, CatchesTruncationAndAContentFileInItsPlace) {
  ASSERT_EQ(truncate(path_.c_str(), static_cast<off_t>(kPageHeaderSize + 2 * kPage)), 0);
  Result<ImageFileHeader> cut = VerifyPayloadFile(path_, ImageFileKind::kPages);
  ASSERT_FALSE(cut.ok());
  EXPECT_TRUE(Contains(cut.status().message(), "truncated")) << cut.status().message();

  std::string content = dir_.File("content-1.img");
  PayloadFileWriter w;
  ASSERT_EQ(Error(w.Open(content, ImageFileKind::kContent)), "");
  ASSERT_TRUE(w.Append("hello", 5).ok());
  ASSERT_TRUE(w.Finish().ok());
  EXPECT_TRUE(VerifyPayloadFile(content, ImageFileKind::kContent).ok());
  Result<ImageFileHeader> wrong = VerifyPayloadFile(content, ImageFileKind::kPages);
  ASSERT_FALSE(wrong.ok());
  EXPECT_TRUE(Contains(wrong.status().message(), "where a pages was expected")) << wrong.status().message();
}

// ---- cross-checks --------------------------------------------------------------------------

constexpr int kRoot = 100;
constexpr int kChild = 101;
constexpr uint64_t kHeap = 0x600000;  // 4 pages, anonymous private

// Process `pid`: its executable mapped at 0x400000, a heap of 4 pages of
// which the second is dumped (the only page of its page file), fd 0 on
// /dev/null.
pb::ProcessImage SmallProcess(int pid, int ppid) {
  pb::ProcessImage p;
  p.set_pid(pid);
  p.set_ppid(ppid);
  p.set_gpregs(std::string(sizeof(user_regs_struct), '\0'));
  p.set_xsave(std::string(576, '\0'));
  for (int i = 0; i < 4; ++i) {
    p.mutable_creds()->add_uids(1000);
    p.mutable_creds()->add_gids(1000);
  }
  p.set_cwd("/");
  p.set_root("/");
  pb::Vma* text = p.add_vmas();
  text->set_start(0x400000);
  text->set_end(0x401000);
  text->set_prot(5);
  text->set_kind(pb::VMA_FILE_PRIVATE);
  text->set_file_id(1);
  pb::Vma* heap = p.add_vmas();
  heap->set_start(kHeap);
  heap->set_end(kHeap + 4 * kPage);
  heap->set_prot(3);
  heap->set_kind(pb::VMA_ANON_PRIVATE);
  p.set_pages_file("pages-" + std::to_string(pid) + ".img");
  pb::PageRun* run = p.add_pages();
  run->set_vaddr(kHeap + kPage);
  run->set_npages(1);
  run->set_offset(kPageHeaderSize);
  pb::Fd* fd = p.add_fds();
  fd->set_fd(0);
  fd->set_file_id(2);
  p.mutable_mm()->set_exe_file_id(1);
  return p;
}

// A root and its child; files 1 (/bin/app) and 2 (/dev/null).
Image SmallImage() {
  Image image;
  image.dir = "/tmp/image";
  image.inventory = SmallInventory();
  image.inventory.set_root_pid(kRoot);
  image.inventory.clear_pids();
  image.inventory.add_pids(kRoot);
  image.inventory.add_pids(kChild);
  pb::FileDesc* app = image.files.add_files();
  app->set_id(1);
  app->set_kind(pb::FILE_REGULAR);
  app->set_path("/bin/app");
  pb::FileDesc* null = image.files.add_files();
  null->set_id(2);
  null->set_kind(pb::FILE_CHARDEV);
  null->set_path("/dev/null");
  image.procs.push_back(SmallProcess(kRoot, 1));
  image.procs.push_back(SmallProcess(kChild, kRoot));
  image.payload_sizes["pages-100.img"] = kPage;
  image.payload_sizes["pages-101.img"] = kPage;
  return image;
}

// The error ValidateImage gives for `image`, "" when accepted.
std::string ValidationError(const Image& image) { return Error(ValidateImage(image)); }

TEST(ImageValidate, AcceptsWellFormedImage) { EXPECT_EQ(ValidationError(SmallImage()), ""); }

TEST(ImageValidate, RefusesOverlappingVmas) {
  Image image = SmallImage();
  pb::Vma* over = image.procs[1].add_vmas();  // after the heap, starting inside it
  over->set_start(kHeap + 3 * kPage);
  over->set_end(kHeap + 6 * kPage);
  over->set_kind(pb::VMA_ANON_PRIVATE);
  std::string err = ValidationError(image);
  EXPECT_TRUE(Contains(err, "process 101: malformed memory map")) << err;
}

TEST(ImageValidate, RefusesUnalignedVma) {
  for (bool start : {true, false}) {
    Image image = SmallImage();
    pb::Vma* heap = image.procs[0].mutable_vmas(1);
    start ? heap->set_start(kHeap + 8) : heap->set_end(kHeap + 4 * kPage - 8);
    std::string err = ValidationError(image);
    EXPECT_TRUE(Contains(err, "process 100: malformed memory map")) << (start ? "start: " : "end: ") << err;
  }
}

TEST(ImageValidate, RefusesPageRunOutsideItsVma) {
  Image image = SmallImage();
  image.procs[0].mutable_pages(0)->set_vaddr(0x700000);  // no mapping there
  std::string err = ValidationError(image);
  EXPECT_TRUE(Contains(err, "process 100: page run outside its memory")) << err;

  image = SmallImage();
  image.procs[0].mutable_pages(0)->set_vaddr(kHeap + 3 * kPage);  // the last heap page and the one after
  image.procs[0].mutable_pages(0)->set_npages(2);
  image.payload_sizes["pages-100.img"] = 2 * kPage;
  err = ValidationError(image);
  EXPECT_TRUE(Contains(err, "process 100: page run outside its memory")) << err;
}

TEST(ImageValidate, RefusesPageRunBeyondPageFileSize) {
  Image image = SmallImage();
  image.procs[0].mutable_pages(0)->set_offset(kPageHeaderSize + kPage);  // the file holds one page
  std::string err = ValidationError(image);
  EXPECT_TRUE(Contains(err, "process 100: page run beyond the end of its page file")) << err;

  image = SmallImage();
  image.procs[0].mutable_pages(0)->set_offset(0);  // in the header
  err = ValidationError(image);
  EXPECT_TRUE(Contains(err, "process 100: page run beyond the end of its page file")) << err;
}

// The offset check adds before it compares: an offset near 2^64 wraps
// around to a small sum and is accepted, and the restore's pread then fails
// halfway. Enable with the fix in CheckRuns (src/ckpt/image.cc).
TEST(ImageValidate, RefusesPageRunWhoseFileOffsetWrapsAround) {
  Image image = SmallImage();
  pb::PageRun* run = image.procs[0].mutable_pages(0);
  run->set_npages(2);
  run->set_offset(0xfffffffffffff000ULL);
  image.payload_sizes["pages-100.img"] = 2 * kPage;
  std::string err = ValidationError(image);
  EXPECT_TRUE(Contains(err, "process 100: page run beyond the end of its page file")) << err;
}

TEST(ImageValidate, RefusesFdOfUnknownFile) {
  Image image = SmallImage();
  image.procs[1].mutable_fds(0)->set_file_id(3);
  std::string err = ValidationError(image);
  EXPECT_TRUE(Contains(err, "process 101: fd 0 of an unknown file")) << err;
}

TEST(ImageValidate, RefusesDuplicatePid) {
  Image image = SmallImage();
  image.inventory.set_pids(1, kRoot);
  image.procs[1].set_pid(kRoot);
  std::string err = ValidationError(image);
  EXPECT_TRUE(Contains(err, "inventory: bad or repeated pid")) << err;
}

TEST(ImageValidate, RefusesRootNotFirst) {
  Image image = SmallImage();
  image.inventory.set_pids(0, kChild);
  image.inventory.set_pids(1, kRoot);
  std::swap(image.procs[0], image.procs[1]);
  std::string err = ValidationError(image);
  EXPECT_TRUE(Contains(err, "inventory: the root is not the first process")) << err;
}

TEST(ImageValidate, RefusesParentOutsideImage) {
  Image image = SmallImage();
  image.procs[1].set_ppid(555);
  std::string err = ValidationError(image);
  EXPECT_TRUE(Contains(err, "process 101: its parent is not in the image")) << err;
}

// A process that is its own parent (or one of a ppid cycle) is never
// created: the restorer creates each process from its parent, so the
// restore waits 20 s for it and fails. Enable with the fix in ValidateImage
// (parents before children, as the inventory lists them).
TEST(ImageValidate, RefusesProcessItsParentsDoNotLeadToFromTheRoot) {
  Image image = SmallImage();
  image.procs[1].set_ppid(kChild);
  std::string err = ValidationError(image);
  EXPECT_TRUE(Contains(err, "process 101: its parent is not in the image")) << err;
}

TEST(ImageValidate, RefusesBadRegisterRecordSize) {
  for (size_t size : {size_t{0}, sizeof(user_regs_struct) - 1, sizeof(user_regs_struct) + 1}) {
    Image image = SmallImage();
    image.procs[1].set_gpregs(std::string(size, '\0'));
    std::string err = ValidationError(image);
    EXPECT_TRUE(Contains(err, "process 101: bad register record")) << size << " bytes: " << err;
  }
}

TEST(ImageValidate, RefusesMappingOfUnknownFile) {
  Image image = SmallImage();
  image.procs[0].mutable_vmas(0)->set_file_id(7);
  std::string err = ValidationError(image);
  EXPECT_TRUE(Contains(err, "process 100: mapping of an unknown file")) << err;
}

TEST(ImageValidate, CarriedFilesAreAJvmsPerfDataFileWithItsContents) {
  EXPECT_TRUE(CarriedWithProcess("/tmp/hsperfdata_root/1234"));
  EXPECT_TRUE(CarriedWithProcess("/tmp/hsperfdata_alice/7"));
  EXPECT_FALSE(CarriedWithProcess("/tmp/hsperfdata_root/"));
  EXPECT_FALSE(CarriedWithProcess("/tmp/hsperfdata_/12"));
  EXPECT_FALSE(CarriedWithProcess("/tmp/hsperfdata_root/12/x"));
  EXPECT_FALSE(CarriedWithProcess("/tmp/hsperfdata_root/../../etc/passwd"));
  EXPECT_FALSE(CarriedWithProcess("/var/tmp/hsperfdata_root/12"));
  EXPECT_FALSE(CarriedWithProcess("/tmp/data.bin"));
  Image image = SmallImage();
  pb::FileDesc* f = image.files.mutable_files(0);
  f->set_path("/tmp/hsperfdata_root/100");
  f->set_carried(true);
  f->set_content_file("content-1.img");
  image.payload_sizes["content-1.img"] = 32768;
  EXPECT_EQ(ValidationError(image), "");
  image.payload_sizes.erase("content-1.img");
  EXPECT_TRUE(Contains(ValidationError(image), "carried file")) << ValidationError(image);
  image.payload_sizes["content-1.img"] = 32768;
  f->set_path("/etc/passwd");  // a crafted image may not write anywhere else
  EXPECT_TRUE(Contains(ValidationError(image), "carried file")) << ValidationError(image);
}

// ---- a whole image on disk --------------------------------------------------------------------

class ImageLoad : public ::testing::Test {
 protected:
  // Writes SmallImage() into the directory, each file by the real writer,
  // and the inventory listing them.
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    image_ = SmallImage();
    Record(kFileTableFile, ImageFileKind::kFileTable, image_.files);
    for (const pb::ProcessImage& p : image_.procs) {
      Record(CoreFileName(p.pid()), ImageFileKind::kProcess, p);
      PayloadFileWriter w;
      ASSERT_EQ(Error(w.Open(dir_.File(p.pages_file()), ImageFileKind::kPages)), "");
      std::string page(kPage, static_cast<char>(p.pid()));
      ASSERT_TRUE(w.Append(page.data(), page.size()).ok());
      Result<ImageFileHeader> h = w.Finish();
      ASSERT_TRUE(h.ok());
      List(p.pages_file(), *h);
    }
    ASSERT_TRUE(WriteRecordFile(dir_.File(kInventoryFile), ImageFileKind::kInventory, image_.inventory).ok());
  }

  void Record(const std::string& name, ImageFileKind kind, const google::protobuf::MessageLite& m) {
    Result<ImageFileHeader> h = WriteRecordFile(dir_.File(name), kind, m);
    ASSERT_TRUE(h.ok()) << h.status().message();
    List(name, *h);
  }

  void List(const std::string& name, const ImageFileHeader& h) {
    pb::ImageFileSum* sum = image_.inventory.add_files();
    sum->set_name(name);
    sum->set_size(h.header_size + h.payload_size);
    sum->set_xxh3(h.payload_xxh3);
  }

  TempDir dir_;
  Image image_;  // what the directory holds
};

TEST_F(ImageLoad, ReadsBackAWrittenImage) {
  Result<Image> loaded = LoadImage(dir_.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  EXPECT_EQ(loaded->inventory.SerializeAsString(), image_.inventory.SerializeAsString());
  EXPECT_EQ(loaded->files.SerializeAsString(), image_.files.SerializeAsString());
  ASSERT_EQ(loaded->procs.size(), 2u);
  EXPECT_EQ(loaded->procs[1].SerializeAsString(), image_.procs[1].SerializeAsString());
  EXPECT_EQ(loaded->payload_sizes, image_.payload_sizes);
  EXPECT_NE(loaded->Find(kChild), nullptr);
}

TEST_F(ImageLoad, RefusesPageFileReplacedAfterTheInventory) {
  // A well-formed page file of the right size, but not the one listed.
  PayloadFileWriter w;
  ASSERT_EQ(Error(w.Open(dir_.File("pages-101.img"), ImageFileKind::kPages)), "");
  std::string other(kPage, 'x');
  ASSERT_TRUE(w.Append(other.data(), other.size()).ok());
  ASSERT_TRUE(w.Finish().ok());
  Result<Image> loaded = LoadImage(dir_.path());
  ASSERT_FALSE(loaded.ok());
  EXPECT_TRUE(Contains(loaded.status().message(), "pages-101.img: checksum differs from the inventory's"))
      << loaded.status().message();
}

TEST_F(ImageLoad, RefusesFileOfAnotherSizeThanListed) {
  ASSERT_EQ(truncate(dir_.File("pages-100.img").c_str(), static_cast<off_t>(kPageHeaderSize)), 0);
  Result<Image> loaded = LoadImage(dir_.path());
  ASSERT_FALSE(loaded.ok());
  EXPECT_TRUE(Contains(loaded.status().message(), "pages-100.img: 4096 bytes, the inventory says 8192"))
      << loaded.status().message();
}

TEST_F(ImageLoad, RefusesDirectoryWithoutInventory) {
  ASSERT_EQ(unlink(dir_.File(kInventoryFile).c_str()), 0);
  Result<Image> loaded = LoadImage(dir_.path());
  ASSERT_FALSE(loaded.ok());
  EXPECT_TRUE(Contains(loaded.status().message(), "no inventory.img")) << loaded.status().message();
}

}  // namespace
}  // namespace roam

namespace roam {
namespace {

TEST(ImageValidate, RefusesAZombieWhosePidIsTakenInTheImage) {
  Image image = SmallImage();
  pb::Zombie* z = image.procs[0].add_zombies();
  z->set_pid(102);
  z->set_wait_status(3 << 8);
  EXPECT_EQ(ValidationError(image), "") << "a zombie with a PID of its own";
  z->set_pid(kChild);
  EXPECT_TRUE(Contains(ValidationError(image), "bad zombie pid 101")) << ValidationError(image);
  z->set_pid(0);
  EXPECT_TRUE(Contains(ValidationError(image), "bad zombie pid 0")) << ValidationError(image);
}

TEST(ImageValidate, APidfdNamesAProcessOrZombieOfTheImageOrNone) {
  Image image = SmallImage();
  pb::FileDesc* d = image.files.mutable_files(1);
  d->set_kind(pb::FILE_PIDFD);
  d->set_path("");
  for (int pid : {kChild, -1}) {
    d->set_pidfd_pid(pid);
    EXPECT_EQ(ValidationError(image), "") << "a pidfd of " << pid;
  }
  d->set_pidfd_pid(102);
  EXPECT_TRUE(Contains(ValidationError(image), "pidfd 2 of a process not in the image")) << ValidationError(image);
  pb::Zombie* z = image.procs[0].add_zombies();
  z->set_pid(102);
  EXPECT_EQ(ValidationError(image), "") << "a pidfd of a zombie";
  d->set_pidfd_pid(0);
  EXPECT_TRUE(Contains(ValidationError(image), "pidfd 2 of a process not in the image")) << ValidationError(image);
}

TEST(ImageValidate, RefusesAControllingTerminalThatIsNotInherited) {
  Image image = SmallImage();
  image.procs[0].set_ctty_file(2);  // /dev/null, a device reopened by name
  EXPECT_TRUE(Contains(ValidationError(image), "controlling terminal is not an inherited file")) << ValidationError(image);
  image.files.mutable_files(1)->set_kind(pb::FILE_INHERITED);
  image.files.mutable_files(1)->clear_path();
  EXPECT_EQ(ValidationError(image), "");
  image.files.mutable_files(1)->set_kind(pb::FILE_TERMINAL);
  image.files.mutable_files(1)->set_inherit_fd(7);
  EXPECT_FALSE(ValidationError(image).empty()) << "a terminal reopened from fd 7 of the restorer";
}

// A segment of 2 pages (one of them saved), mapped whole by the root; a
// set of 2 semaphores the child holds an adjustment on.
Image SysvImage() {
  Image image = SmallImage();
  pb::SysvShm* shm = image.files.add_sysv_shm();
  shm->mutable_perm()->set_id(32768);
  shm->set_size(2 * kPage - 100);
  shm->set_pages_file("sysvshm-32768.img");
  pb::PageRun* run = shm->add_pages();
  run->set_vaddr(kPage);
  run->set_npages(1);
  run->set_offset(kPageHeaderSize);
  image.payload_sizes["sysvshm-32768.img"] = kPage;
  pb::Vma* v = image.procs[0].add_vmas();
  v->set_start(0x7f0000000000);
  v->set_end(0x7f0000000000 + 2 * kPage);
  v->set_prot(3);
  v->set_kind(pb::VMA_SYSV_SHM);
  v->set_sysv_shmid(32768);
  pb::SysvSem* sem = image.files.add_sysv_sem();
  sem->mutable_perm()->set_id(5);
  sem->add_values(0);
  sem->add_values(1);
  pb::SemUndo* u = image.procs[1].add_sem_undo();
  u->set_semid(5);
  u->set_num(1);
  u->set_adj(1);
  return image;
}

TEST(ImageValidate, AcceptsSystemVObjectsThatAgree) { EXPECT_EQ(ValidationError(SysvImage()), ""); }

TEST(ImageValidate, RefusesAMappingOfAnUnknownOrSmallerSegment) {
  Image image = SysvImage();
  image.procs[0].mutable_vmas(2)->set_sysv_shmid(7);
  EXPECT_TRUE(Contains(ValidationError(image), "mapping of an unknown System V segment")) << ValidationError(image);
  image = SysvImage();
  image.files.mutable_sysv_shm(0)->set_size(kPage);  // the mapping reaches past it
  image.files.mutable_sysv_shm(0)->clear_pages();
  EXPECT_TRUE(Contains(ValidationError(image), "mapping of an unknown System V segment")) << ValidationError(image);
  image = SysvImage();
  image.files.mutable_sysv_shm(0)->mutable_pages(0)->set_vaddr(2 * kPage);  // a page past its end
  EXPECT_FALSE(ValidationError(image).empty());
  image = SysvImage();
  image.files.mutable_sysv_shm(0)->set_pages_file("../x.img");
  EXPECT_TRUE(Contains(ValidationError(image), "System V segment without its pages")) << ValidationError(image);
}

TEST(ImageValidate, RefusesAnAdjustmentOfAnUnknownSemaphoreOrValueOutOfRange) {
  Image image = SysvImage();
  image.procs[1].mutable_sem_undo(0)->set_num(2);  // the set has 2
  EXPECT_TRUE(Contains(ValidationError(image), "adjustment of an unknown System V semaphore")) << ValidationError(image);
  image = SysvImage();
  image.procs[1].mutable_sem_undo(0)->set_semid(6);
  EXPECT_TRUE(Contains(ValidationError(image), "adjustment of an unknown System V semaphore")) << ValidationError(image);
  image = SysvImage();
  image.files.mutable_sysv_sem(0)->set_values(0, 40000);
  EXPECT_TRUE(Contains(ValidationError(image), "semaphore value out of range")) << ValidationError(image);
}

TEST(ImageValidate, FileLocksMustBeOnFdsItHas) {
  Image image = SmallImage();
  pb::FileLock* l = image.procs[0].add_locks();
  l->set_fd(0);
  l->set_kind(pb::FileLock::POSIX);
  l->set_write(true);
  l->set_start(10);
  l->set_length(10);
  EXPECT_EQ(ValidationError(image), "");
  l->set_fd(3);  // it has fd 0 only
  EXPECT_TRUE(Contains(ValidationError(image), "a file lock on fd 3 it cannot hold")) << ValidationError(image);
  l->set_fd(0);
  l->set_kind(pb::FileLock::KIND_UNSPECIFIED);
  EXPECT_TRUE(Contains(ValidationError(image), "a file lock on fd 0")) << ValidationError(image);
  l->set_kind(pb::FileLock::OFD);
  l->set_length(UINT64_MAX - 5);  // past any offset
  EXPECT_TRUE(Contains(ValidationError(image), "a file lock on fd 0")) << ValidationError(image);
}

// A socketpair end with "ab" waiting and file 1 in flight with it.
Image InFlightImage() {
  Image image = SmallImage();
  pb::FileDesc* d = image.files.add_files();
  d->set_id(static_cast<uint32_t>(image.files.files_size()));
  d->set_kind(pb::FILE_UNIX_SOCKET);
  pb::UnixSocket* u = d->mutable_unix_socket();
  u->set_ino(77);
  u->set_type(SOCK_STREAM);
  u->add_queued("ab");
  pb::InFlightFds* f = u->add_in_flight();
  f->set_chunk(0);
  f->add_files(1);
  return image;
}

TEST(ImageValidate, AcceptsFdsInFlightThatNameFilesOfTheTable) { EXPECT_EQ(ValidationError(InFlightImage()), ""); }

TEST(ImageValidate, RefusesFdsInFlightOutOfTheQueueOrNamingNoFile) {
  Image image = InFlightImage();
  image.files.mutable_files(image.files.files_size() - 1)->mutable_unix_socket()->mutable_in_flight(0)->set_chunk(1);
  EXPECT_TRUE(Contains(ValidationError(image), "out of its queue")) << ValidationError(image);
  image = InFlightImage();
  image.files.mutable_files(image.files.files_size() - 1)->mutable_unix_socket()->mutable_in_flight(0)->set_files(0, 99);
  EXPECT_TRUE(Contains(ValidationError(image), "an fd in flight names no file")) << ValidationError(image);
  image = InFlightImage();
  image.files.mutable_files(image.files.files_size() - 1)->mutable_unix_socket()->set_alone(true);
  EXPECT_TRUE(Contains(ValidationError(image), "fds in flight at a socket alone")) << ValidationError(image);
}

}  // namespace
}  // namespace roam
