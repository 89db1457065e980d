// One file of a checkpoint image. Every file starts with an ImageFileHeader:
// a magic, the image format version, what the file holds, the architecture,
// and the size and XXH3-64 checksum of the payload that follows. Record files
// (inventory, file table, processes) hold one protobuf message right after
// the 64-byte header; page files hold raw pages after a header padded to
// 4 KiB, so that every page sits 4 KiB-aligned in the file.
//
// Readers check everything before trusting anything: a truncated, corrupt,
// foreign-architecture or newer-version file is an error that names the file
// and what is wrong.
#pragma once

#include <sys/uio.h>
#include <xxhash.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <google/protobuf/message_lite.h>

#include "ckpt/image_sink.h"
#include "ckpt/write_behind.h"
#include "common/status.h"

namespace roam {

inline constexpr char kImageMagic[8] = {'R', 'O', 'A', 'M', 'I', 'M', 'G', '\n'};
inline constexpr uint32_t kImageVersion = 1;
inline constexpr uint32_t kImageArchX86_64 = 62;  // EM_X86_64
inline constexpr uint32_t kRecordHeaderSize = 64;
inline constexpr uint32_t kPageHeaderSize = 4096;

enum class ImageFileKind : uint32_t {
  kInventory = 1,
  kFileTable = 2,
  kProcess = 3,
  kPages = 4,      // private pages of a process or a shared memory object
  kContent = 5,    // contents of a deleted file
};

struct ImageFileHeader {
  char magic[8];
  uint32_t version;
  uint32_t kind;
  uint32_t arch;
  uint32_t header_size;  // where the payload starts
  uint64_t payload_size;
  uint64_t payload_xxh3;
  uint8_t reserved[24];
};
static_assert(sizeof(ImageFileHeader) == kRecordHeaderSize);

// Checks a header read from the first bytes of file `name` (for messages):
// magic, version (a newer one is refused as such), kind, architecture, header
// size, and that header + payload is exactly `file_size` bytes. Pure.
Status CheckImageHeader(const std::string& name, const void* bytes, size_t len, ImageFileKind kind,
                        uint64_t file_size, ImageFileHeader* out);

// Writes `message` as a record file, then fsyncs it. Replaces an older file.
// Returns the header written (for the inventory's checksum list).
Result<ImageFileHeader> WriteRecordFile(const std::string& path, ImageFileKind kind,
                                        const google::protobuf::MessageLite& message);

// Writes `message` as record file `name` into `sink`, and closes it there.
Result<ImageFileHeader> WriteRecord(ImageSink& sink, const std::string& name, ImageFileKind kind,
                                    const google::protobuf::MessageLite& message);

// Reads and checks a whole record file and parses its payload into `message`.
Status ReadRecordFile(const std::string& path, ImageFileKind kind, google::protobuf::MessageLite* message);

// Checks a record held in memory (`bytes` is a whole file). Pure; the fuzz
// target drives the image reader through it.
Status ParseRecordBytes(const std::string& name, const std::string& bytes, ImageFileKind kind,
                        google::protobuf::MessageLite* message);

// Writes a raw payload file (pages or file contents) in pieces, into a sink
// or at a path. Append returns the byte offset of the piece in the file; for
// page files every piece must be a whole number of pages, so pages stay
// 4 KiB-aligned. The header goes last, at offset 0, when the size and
// checksum are known.
class PayloadFileWriter {
 public:
  PayloadFileWriter() = default;
  ~PayloadFileWriter();
  PayloadFileWriter(const PayloadFileWriter&) = delete;
  PayloadFileWriter& operator=(const PayloadFileWriter&) = delete;

  // `sink` must outlive the writer.
  Status Open(ImageSink* sink, const std::string& name, ImageFileKind kind);
  Status Open(const std::string& path, ImageFileKind kind);
  Result<uint64_t> Append(const void* data, size_t len);
  // Appends `pieces` one after the other. Where the sink gives the file's
  // descriptor (a directory), they are hashed now and written behind the
  // caller's back (write_behind.h): their bytes must stay as they are until
  // the next call on this writer returns. Else as Append.
  Status AppendBehind(const std::vector<iovec>& pieces);
  // Waits until every piece is written: their buffers are free again.
  Status Flush() { return behind_ != nullptr ? behind_->Wait() : Status::Ok(); }
  // Writes the header (size, checksum) and closes. No fsync: the caller
  // syncs the whole image (ImageSink::Sync) before declaring it complete.
  Result<ImageFileHeader> Finish();
  uint64_t payload_size() const { return payload_size_; }

 private:
  std::unique_ptr<ImageSink> owned_;  // for Open(path)
  ImageSink* sink_ = nullptr;
  std::string name_;
  ImageFileKind kind_ = ImageFileKind::kPages;
  uint64_t payload_size_ = 0;
  XXH3_state_t* hash_ = nullptr;
  std::unique_ptr<WriteBehind> behind_;  // made at the first AppendBehind
  bool behind_tried_ = false;
};

// Reads a payload file through once and checks its header and checksum.
Result<ImageFileHeader> VerifyPayloadFile(const std::string& path, ImageFileKind kind);

const char* ImageFileKindName(ImageFileKind kind);

}  // namespace roam
