#include "ckpt/image_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "common/file_util.h"

namespace roam {

namespace {

// The header of a file of `kind` whose payload is `size` bytes with XXH3-64
// `hash` (a record's header is 64 bytes, a page or content file's 4 KiB).
ImageFileHeader MakeImageHeader(ImageFileKind kind, uint64_t size, uint64_t hash) {
  ImageFileHeader h;
  memset(&h, 0, sizeof(h));
  memcpy(h.magic, kImageMagic, sizeof(h.magic));
  h.version = kImageVersion;
  h.kind = static_cast<uint32_t>(kind);
  h.arch = kImageArchX86_64;
  h.header_size = (kind == ImageFileKind::kPages || kind == ImageFileKind::kContent) ? kPageHeaderSize
                                                                                     : kRecordHeaderSize;
  h.payload_size = size;
  h.payload_xxh3 = hash;
  return h;
}

}  // namespace

const char* ImageFileKindName(ImageFileKind kind) {
  switch (kind) {
    case ImageFileKind::kInventory: return "inventory";
    case ImageFileKind::kFileTable: return "file table";
    case ImageFileKind::kProcess: return "process";
    case ImageFileKind::kPages: return "pages";
    case ImageFileKind::kContent: return "file content";
  }
  return "unknown";
}

Status CheckImageHeader(const std::string& name, const void* bytes, size_t len, ImageFileKind kind,
                        uint64_t file_size, ImageFileHeader* out) {
  if (len < sizeof(ImageFileHeader)) {
    return Status::Error(name + ": truncated (" + std::to_string(len) + " bytes, no complete header)");
  }
  ImageFileHeader h;
  memcpy(&h, bytes, sizeof(h));
  if (memcmp(h.magic, kImageMagic, sizeof(h.magic)) != 0) return Status::Error(name + ": not a roam image file (bad magic)");
  if (h.version > kImageVersion) {
    return Status::Error(name + ": image format version " + std::to_string(h.version) +
                         " is newer than this roam understands (" + std::to_string(kImageVersion) + ")");
  }
  if (h.version == 0) return Status::Error(name + ": bad image format version 0");
  if (h.arch != kImageArchX86_64) {
    return Status::Error(name + ": image of a foreign architecture (ELF machine " + std::to_string(h.arch) +
                         "), this is x86_64");
  }
  if (h.kind != static_cast<uint32_t>(kind)) {
    return Status::Error(name + ": holds a " + ImageFileKindName(static_cast<ImageFileKind>(h.kind)) +
                         " record where a " + ImageFileKindName(kind) + " was expected");
  }
  uint32_t want_header = (kind == ImageFileKind::kPages || kind == ImageFileKind::kContent) ? kPageHeaderSize
                                                                                              : kRecordHeaderSize;
  if (h.header_size != want_header) return Status::Error(name + ": bad header size " + std::to_string(h.header_size));
  if (file_size < h.header_size || file_size - h.header_size != h.payload_size) {
    return Status::Error(name + ": truncated or padded: " + std::to_string(file_size) + " bytes, header says " +
                         std::to_string(uint64_t{h.header_size} + h.payload_size));
  }
  for (uint8_t b : h.reserved) {
    if (b != 0) return Status::Error(name + ": corrupt header (reserved bytes set)");
  }
  *out = h;
  return Status::Ok();
}

namespace {

// A record file's bytes: header, then the encoded message.
Result<std::string> RecordBytes(const std::string& name, ImageFileKind kind, const google::protobuf::MessageLite& message,
                                ImageFileHeader* header) {
  std::string payload;
  if (!message.SerializeToString(&payload)) return Status::Error("encode " + name + ": protobuf serialization failed");
  *header = MakeImageHeader(kind, payload.size(), XXH3_64bits(payload.data(), payload.size()));
  std::string bytes(reinterpret_cast<const char*>(header), sizeof(*header));
  bytes += payload;
  return bytes;
}

}  // namespace

Result<ImageFileHeader> WriteRecordFile(const std::string& path, ImageFileKind kind,
                                        const google::protobuf::MessageLite& message) {
  ImageFileHeader h;
  Result<std::string> bytes = RecordBytes(path, kind, message, &h);
  if (!bytes.ok()) return bytes.status();
  Status st = WriteFileAtomic(path, *bytes, 0600);
  if (!st.ok()) return st;
  return h;
}

Result<ImageFileHeader> WriteRecord(ImageSink& sink, const std::string& name, ImageFileKind kind,
                                    const google::protobuf::MessageLite& message) {
  ImageFileHeader h;
  Result<std::string> bytes = RecordBytes(sink.Where(name), kind, message, &h);
  if (!bytes.ok()) return bytes.status();
  Status st = sink.Write(name, 0, bytes->data(), bytes->size());
  if (st.ok()) st = sink.Close(name);
  if (!st.ok()) return st;
  return h;
}

Status ParseRecordBytes(const std::string& name, const std::string& bytes, ImageFileKind kind,
                        google::protobuf::MessageLite* message) {
  ImageFileHeader h;
  Status st = CheckImageHeader(name, bytes.data(), bytes.size(), kind, bytes.size(), &h);
  if (!st.ok()) return st;
  const char* payload = bytes.data() + h.header_size;
  if (XXH3_64bits(payload, h.payload_size) != h.payload_xxh3) return Status::Error(name + ": checksum mismatch (corrupt)");
  if (!message->ParseFromArray(payload, static_cast<int>(h.payload_size))) {
    return Status::Error(name + ": corrupt record (protobuf decoding failed)");
  }
  return Status::Ok();
}

Status ReadRecordFile(const std::string& path, ImageFileKind kind, google::protobuf::MessageLite* message) {
  Result<std::string> bytes = ReadFile(path);
  if (!bytes.ok()) return bytes.status();
  return ParseRecordBytes(path, *bytes, kind, message);
}

// ---- payload files ------------------------------------------------------------

PayloadFileWriter::~PayloadFileWriter() {
  behind_.reset();  // waits: the file is closed below
  if (sink_ != nullptr) (void)sink_->Close(name_);
  if (hash_ != nullptr) XXH3_freeState(hash_);
}

Status PayloadFileWriter::Open(const std::string& path, ImageFileKind kind) {
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  owned_ = std::make_unique<DirImageSink>(dir, /*sync=*/false);
  return Open(owned_.get(), path.substr(slash == std::string::npos ? 0 : slash + 1), kind);
}

Status PayloadFileWriter::Open(ImageSink* sink, const std::string& name, ImageFileKind kind) {
  sink_ = sink;
  name_ = name;
  kind_ = kind;
  hash_ = XXH3_createState();
  XXH3_64bits_reset(hash_);
  payload_size_ = 0;
  return Status::Ok();
}

Result<uint64_t> PayloadFileWriter::Append(const void* data, size_t len) {
  uint64_t offset = kPageHeaderSize + payload_size_;
  Status st = Flush();
  if (st.ok()) st = sink_->Write(name_, offset, data, len);
  if (!st.ok()) return st;
  XXH3_64bits_update(hash_, data, len);
  payload_size_ += len;
  return offset;
}

Status PayloadFileWriter::AppendBehind(const std::vector<iovec>& pieces) {
  if (!behind_tried_) {
    behind_tried_ = true;
    Result<int> fd = sink_->FileFd(name_);
    if (!fd.ok()) return fd.status();
    if (*fd >= 0) behind_ = std::make_unique<WriteBehind>(*fd, sink_->Where(name_));
  }
  if (behind_ == nullptr) {
    for (const iovec& v : pieces) {
      Result<uint64_t> r = Append(v.iov_base, v.iov_len);
      if (!r.ok()) return r.status();
    }
    return Status::Ok();
  }
  const uint64_t offset = kPageHeaderSize + payload_size_;
  for (const iovec& v : pieces) {
    XXH3_64bits_update(hash_, v.iov_base, v.iov_len);
    payload_size_ += v.iov_len;
  }
  return behind_->Queue(pieces, offset);
}

Result<ImageFileHeader> PayloadFileWriter::Finish() {
  if (Status st = Flush(); !st.ok()) return st;
  behind_.reset();
  // The header, padded to a page: the padding is written too, so that a
  // file with no payload still has its whole header.
  ImageFileHeader h = MakeImageHeader(kind_, payload_size_, XXH3_64bits_digest(hash_));
  std::string head(kPageHeaderSize, '\0');
  memcpy(head.data(), &h, sizeof(h));
  Status st = sink_->Write(name_, 0, head.data(), head.size());
  if (st.ok()) st = sink_->Close(name_);
  sink_ = nullptr;
  if (!st.ok()) return st;
  return h;
}

Result<ImageFileHeader> VerifyPayloadFile(const std::string& path, ImageFileKind kind) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::Errno("open " + path);
  struct stat sb;
  fstat(fd, &sb);
  std::vector<char> buf(4 << 20);
  ssize_t n = pread(fd, buf.data(), kPageHeaderSize, 0);
  ImageFileHeader h;
  Status st = CheckImageHeader(path, buf.data(), n < 0 ? 0 : static_cast<size_t>(n), kind,
                               static_cast<uint64_t>(sb.st_size), &h);
  if (!st.ok()) {
    close(fd);
    return st;
  }
  XXH3_state_t* state = XXH3_createState();
  XXH3_64bits_reset(state);
  uint64_t off = h.header_size;
  uint64_t left = h.payload_size;
  while (left > 0) {
    size_t want = left < buf.size() ? left : buf.size();
    n = pread(fd, buf.data(), want, static_cast<off_t>(off));
    if (n <= 0) {
      XXH3_freeState(state);
      close(fd);
      return Status::Error(path + ": truncated while reading");
    }
    XXH3_64bits_update(state, buf.data(), static_cast<size_t>(n));
    off += static_cast<uint64_t>(n);
    left -= static_cast<uint64_t>(n);
  }
  uint64_t sum = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  close(fd);
  if (sum != h.payload_xxh3) return Status::Error(path + ": checksum mismatch (corrupt page data)");
  return h;
}

}  // namespace roam
