// libFuzzer target for the checkpoint image reader: the header and record
// checks of src/ckpt/image_file.h and the cross-checks of ValidateImage
// (src/ckpt/image.h), i.e. everything `roam restore` trusts about a directory
// someone else wrote.
//
// An input is up to kMaxParts parts separated by kPartSeparator. Each part is
// one flags byte followed by one whole image file:
//   part 0       inventory.img
//   part 1       files.img
//   parts 2..    core-PID.img, in inventory order
// Flag bit 0, "reseal": before reading the part, the target sets the payload
// size and XXH3 in its header to match the bytes that follow, as a writer
// would. Without it nearly every mutation of a payload stops at the checksum
// and the decoder and cross-checks behind it go unfuzzed. The other header
// fields (magic, version, kind, arch, header size, reserved) stay as fuzzed.
//
// Each part is read with ParseRecordBytes as the kind its position says, and
// its first bytes are checked as the header of a page file and of a content
// file. When the inventory, the file table and at least one process parse,
// they are put together as LoadImage does (payload sizes from the sizes the
// inventory lists, as with verify_payloads off) and given to ValidateImage.
//
// Besides crashes, leaks and sanitizer reports, it aborts when one of these
// properties of the reader does not hold:
//   - a refusal names the file it refuses;
//   - an accepted record, written again the way WriteRecordFile writes it,
//     reads back accepted and equal;
//   - an image that ValidateImage accepts (and that LoadImage could have
//     assembled) gives the restore no surprise: every page run lies inside
//     one private mapping of its process and inside its page file, every
//     shared memory run inside its object and its page file, every file and
//     shared memory reference resolves, and the ppid links lead from the root
//     to every process (the restorer creates a process from its parent only).
// These are checked here with overflow-safe arithmetic of their own, not by
// calling the validator's helpers.
//
// Mutation: half of the time libFuzzer's own byte mutations (they fuzz the
// framing, the headers and the protobuf decoder); the other half a mutator
// that knows the schemas: it decodes one record, changes one to three fields
// of it (or of messages nested in it) to values at an edge (page boundaries,
// the top of user space, 2^64 minus a page, pids and ids of the seed image,
// sizes of register and signal records), or adds, removes, duplicates or
// swaps repeated elements, and writes the record back with a correct header.
// A third of these start from a well-formed seed image rather than from the
// input, so that ValidateImage keeps meeting images wrong in one place only.
// Byte mutations alone rarely keep the nested length prefixes of a record
// intact, and the corpus drifts towards images refused at the first check.
//
// Generator mode: with ROAM_FUZZ_WRITE_SEEDS=DIR set, the binary writes seed
// inputs into DIR and exits. Their records and page files are written by the
// real WriteRecordFile and PayloadFileWriter, and read back.
#include <google/protobuf/stubs/logging.h>
#include <sys/user.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "ckpt/image.h"
#include "ckpt/image_file.h"
#include "common/file_util.h"
#include "image.pb.h"

namespace roam {
namespace {

constexpr std::string_view kPartSeparator = "--roam-part--";
constexpr size_t kMaxParts = 6;  // inventory, file table, four processes
constexpr uint8_t kReseal = 1;
constexpr uint64_t kPage = 4096;
constexpr uint64_t kUserTop = 0x800000000000ULL;

[[noreturn]] void Violated(const std::string& what) {
  std::fprintf(stderr, "image_fuzz: property violated: %s\n", what.c_str());
  std::abort();
}

// A record file as WriteRecordFile lays it out, built in memory.
std::string RecordBytes(ImageFileKind kind, const google::protobuf::Message& message) {
  std::string payload = message.SerializeAsString();
  ImageFileHeader h;
  memset(&h, 0, sizeof(h));
  memcpy(h.magic, kImageMagic, sizeof(h.magic));
  h.version = kImageVersion;
  h.kind = static_cast<uint32_t>(kind);
  h.arch = kImageArchX86_64;
  h.header_size = kRecordHeaderSize;
  h.payload_size = payload.size();
  h.payload_xxh3 = XXH3_64bits(payload.data(), payload.size());
  return std::string(reinterpret_cast<const char*>(&h), sizeof(h)) + payload;
}

void Reseal(std::string* file) {
  if (file->size() < sizeof(ImageFileHeader)) return;
  ImageFileHeader h;
  memcpy(&h, file->data(), sizeof(h));
  h.payload_size = file->size() - sizeof(h);
  h.payload_xxh3 = XXH3_64bits(file->data() + sizeof(h), h.payload_size);
  memcpy(file->data(), &h, sizeof(h));
}

bool IsPayloadName(const std::string& name) {
  return name.rfind("pages-", 0) == 0 || name.rfind("shmem-", 0) == 0 || name.rfind("content-", 0) == 0;
}

// The names LoadImage accepts in the inventory's file list.
bool LoadableName(const std::string& name) {
  if (name.empty() || name.size() > 64 || name == "." || name == "..") return false;
  for (char c : name) {
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_')) return false;
  }
  return true;
}

// ---- records -------------------------------------------------------------------------

// Reads `file` as a record of `kind`; checks the properties of every answer.
bool ReadRecord(const std::string& name, const std::string& file, ImageFileKind kind,
                google::protobuf::Message* message) {
  Status st = ParseRecordBytes(name, file, kind, message);
  if (!st.ok()) {
    if (st.message().rfind(name + ": ", 0) != 0) Violated("refusal without the file's name: " + st.message());
    return false;
  }
  // Equal serializations (of messages without maps) mean equal messages;
  // cheaper than MessageDifferencer, which would halve the executions.
  std::string written = RecordBytes(kind, *message);
  std::unique_ptr<google::protobuf::Message> again(message->New());
  Status st2 = ParseRecordBytes(name, written, kind, again.get());
  if (!st2.ok()) Violated("an accepted " + name + " written again is refused: " + st2.message());
  if (again->SerializeAsString() != std::string_view(written).substr(sizeof(ImageFileHeader))) {
    Violated("an accepted " + name + " written again reads back different");
  }
  return true;
}

void CheckPayloadHeaders(const std::string& file) {
  for (ImageFileKind kind : {ImageFileKind::kPages, ImageFileKind::kContent}) {
    ImageFileHeader h;
    if (!CheckImageHeader("pages-1.img", file.data(), file.size(), kind, file.size(), &h).ok()) continue;
    if (h.header_size != kPageHeaderSize || h.payload_size != file.size() - kPageHeaderSize) {
      Violated("a payload header accepted for a file of another size");
    }
  }
}

// ---- what an accepted image promises ---------------------------------------------------

// [offset, offset + bytes) lies in the payload of a page file of `payload` bytes.
bool InPageFile(uint64_t offset, uint64_t bytes, uint64_t payload) {
  return offset >= kPageHeaderSize && offset - kPageHeaderSize <= payload &&
         bytes <= payload - (offset - kPageHeaderSize);
}

uint64_t RunBytes(const pb::PageRun& r, const std::string& who) {
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(r.npages(), kPage, &bytes) || bytes == 0) Violated(who + ": accepted a run of size 0 or > 2^64");
  if (r.vaddr() > UINT64_MAX - bytes) Violated(who + ": accepted a run that wraps the address space");
  return bytes;
}

void CheckAcceptedImage(const Image& image) {
  const pb::Inventory& inv = image.inventory;
  std::set<uint32_t> file_ids;
  for (const pb::FileDesc& d : image.files.files()) file_ids.insert(d.id());
  auto known_file = [&](uint32_t id, const std::string& who) {
    if (!file_ids.count(id)) Violated(who + " refers to file " + std::to_string(id) + ", not in the file table");
  };
  for (const pb::FileDesc& d : image.files.files()) {
    for (const pb::EpollTarget& t : d.epoll()) known_file(t.file_id(), "epoll " + std::to_string(d.id()));
  }

  std::set<uint64_t> shmem_ids;
  for (const pb::SharedMemory& s : image.files.shmems()) {
    std::string who = "shared memory " + std::to_string(s.id());
    auto file = image.payload_sizes.find(s.pages_file());
    if (file == image.payload_sizes.end()) Violated(who + ": accepted without its page file");
    uint64_t object = (s.size() + kPage - 1) / kPage * kPage;
    if (s.size() > kUserTop) Violated(who + ": accepted an object larger than the address space");
    for (const pb::PageRun& r : s.pages()) {
      uint64_t bytes = RunBytes(r, who);
      if (r.vaddr() + bytes > object) Violated(who + ": accepted a run beyond the object");
      if (!InPageFile(r.offset(), bytes, file->second)) Violated(who + ": accepted a run beyond its page file");
    }
    shmem_ids.insert(s.id());
  }

  for (const pb::ProcessImage& p : image.procs) {
    std::string who = "process " + std::to_string(p.pid());
    if (p.gpregs().size() != sizeof(user_regs_struct)) Violated(who + ": accepted registers of the wrong size");
    uint64_t prev_end = 0;
    for (const pb::Vma& v : p.vmas()) {
      if (v.start() % kPage || v.end() % kPage || v.start() >= v.end() || v.end() > kUserTop || v.start() < prev_end) {
        Violated(who + ": accepted a malformed memory map");
      }
      prev_end = v.end();
      if (v.kind() == pb::VMA_FILE_PRIVATE || v.kind() == pb::VMA_FILE_SHARED) known_file(v.file_id(), who + " mapping");
      if (v.kind() == pb::VMA_ANON_SHARED && !shmem_ids.count(v.shmem_id())) {
        Violated(who + ": accepted a mapping of an unknown shared memory object");
      }
    }
    auto file = image.payload_sizes.find(p.pages_file());
    if (file == image.payload_sizes.end()) Violated(who + ": accepted without its page file");
    uint64_t prev_run_end = 0;
    for (const pb::PageRun& r : p.pages()) {
      uint64_t bytes = RunBytes(r, who);
      if (r.vaddr() < prev_run_end) Violated(who + ": accepted overlapping page runs");
      prev_run_end = r.vaddr() + bytes;
      bool in_private_vma = false;
      for (const pb::Vma& v : p.vmas()) {
        if (r.vaddr() >= v.start() && r.vaddr() + bytes <= v.end()) {
          in_private_vma = v.kind() == pb::VMA_ANON_PRIVATE || v.kind() == pb::VMA_FILE_PRIVATE;
        }
      }
      if (!in_private_vma) Violated(who + ": accepted a page run outside its private mappings");
      if (!InPageFile(r.offset(), bytes, file->second)) {
        Violated(who + ": accepted a page run (offset " + std::to_string(r.offset()) + ", " + std::to_string(bytes) +
                 " bytes) beyond its page file of " + std::to_string(file->second) + " bytes");
      }
    }
    for (const pb::Fd& f : p.fds()) known_file(f.file_id(), who + " fd " + std::to_string(f.fd()));
    if (p.mm().exe_file_id() != 0) known_file(p.mm().exe_file_id(), who + " exe");
  }

  // The restorer creates the root, then every process creates the processes
  // whose ppid it is (restore.cc): each must be reached that way.
  std::set<int> created{inv.root_pid()};
  std::vector<int> todo{inv.root_pid()};
  while (!todo.empty()) {
    int parent = todo.back();
    todo.pop_back();
    for (const pb::ProcessImage& p : image.procs) {
      if (p.ppid() == parent && p.pid() != inv.root_pid() && created.insert(p.pid()).second) todo.push_back(p.pid());
    }
  }
  for (const pb::ProcessImage& p : image.procs) {
    if (!created.count(p.pid())) {
      Violated("process " + std::to_string(p.pid()) + " (ppid " + std::to_string(p.ppid()) +
               ") accepted but not reachable from the root " + std::to_string(inv.root_pid()) +
               ": the restore would never create it");
    }
  }
}

// ---- one input -----------------------------------------------------------------------------

std::vector<std::string> SplitParts(std::string_view input) {
  std::vector<std::string> parts;
  while (parts.size() < kMaxParts) {
    size_t end = input.find(kPartSeparator);
    parts.emplace_back(input.substr(0, end));
    if (end == std::string_view::npos) break;
    input.remove_prefix(end + kPartSeparator.size());
  }
  return parts;
}

void FuzzImage(std::string_view input) {
  std::vector<std::string> files;
  for (std::string& part : SplitParts(input)) {
    uint8_t flags = part.empty() ? 0 : static_cast<uint8_t>(part[0]);
    std::string file = part.empty() ? "" : part.substr(1);
    if (flags & kReseal) Reseal(&file);
    CheckPayloadHeaders(file);
    files.push_back(std::move(file));
  }

  Image image;
  image.dir = "fuzz";
  bool inventory_ok = ReadRecord(kInventoryFile, files[0], ImageFileKind::kInventory, &image.inventory);
  bool files_ok = files.size() > 1 && ReadRecord(kFileTableFile, files[1], ImageFileKind::kFileTable, &image.files);
  for (size_t i = 2; i < files.size(); ++i) {
    int pid = inventory_ok && static_cast<int>(i - 2) < image.inventory.pids_size() ? image.inventory.pids(i - 2) : 0;
    pb::ProcessImage p;
    if (ReadRecord(CoreFileName(pid), files[i], ImageFileKind::kProcess, &p)) image.procs.push_back(std::move(p));
  }
  if (!inventory_ok || !files_ok || image.procs.empty()) return;
  if (image.inventory.image_version() > kImageVersion) return;  // LoadImage stops here

  // As LoadImage fills payload_sizes with verify_payloads off; and whether
  // LoadImage could have assembled this image at all.
  bool loadable = static_cast<size_t>(image.inventory.pids_size()) == image.procs.size();
  for (const pb::ImageFileSum& s : image.inventory.files()) {
    loadable = loadable && LoadableName(s.name());
    if (IsPayloadName(s.name())) image.payload_sizes[s.name()] = s.size() >= kPageHeaderSize ? s.size() - kPageHeaderSize : 0;
  }
  for (size_t i = 0; loadable && i < image.procs.size(); ++i) loadable = image.procs[i].pid() == image.inventory.pids(i);

  Status st = ValidateImage(image);
  if (st.ok() && loadable) CheckAcceptedImage(image);
  if (!st.ok() && st.message().empty()) Violated("a refusal without a reason");
}

// ---- structure-aware mutation --------------------------------------------------------------

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;
using Rng = std::minstd_rand;

uint64_t Random64(Rng& rng) { return (uint64_t{rng()} << 33) ^ (uint64_t{rng()} << 11) ^ rng(); }

uint64_t EdgeInteger(Rng& rng, uint64_t current) {
  static constexpr uint64_t kEdges[] = {
      0, 1, 2, 3, 7, 64, 127, 128, 575, 576, 4095, 4096, 4097, 8192, 65536, 65537,
      4242, 4243, 4244, 4245, 77, 1 << 22, (1 << 22) + 1, 0x7fffffff, 0x80000000, 0xffffffff,
      0x400000, 0x7ffd00021000, kUserTop - kPage, kUserTop, kUserTop + kPage, kUserTop / kPage,
      kUserTop / kPage + 1, 1ull << 63, ~0ull - 2 * kPage + 1, ~0ull - kPage + 1, ~0ull};
  switch (rng() % 5) {
    case 0:
    case 1: return kEdges[rng() % std::size(kEdges)];
    case 2: return current + ((rng() % 2) ? kPage : 1) * ((rng() % 2) ? 1 : ~0ull);  // +- 1 or a page
    case 3: return rng() % 2 ? current ^ (1ull << (rng() % 64)) : 0 - current;
    default: return Random64(rng);
  }
}

std::string EdgeString(Rng& rng, std::string current, bool bytes) {
  static const char* const kStrings[] = {"", "/", "x86_64", "aarch64", "pages-4242.img", "pages-4243.img",
                                         "shmem-77.img", "content-9.img", "core-4242.img", "files.img",
                                         "..", "a/b", "/dev/null", "[heap]"};
  static constexpr size_t kSizes[] = {0, 1, 127, 128, 129, 215, 216, 217, 575, 576, 4096, 4097, 65537};
  switch (rng() % 4) {
    case 0: return kStrings[rng() % std::size(kStrings)];
    case 1: current.resize(bytes ? kSizes[rng() % std::size(kSizes)] : rng() % 80, bytes ? '\0' : 'x'); return current;
    case 2: if (!current.empty()) current[rng() % current.size()] ^= static_cast<char>(1 + rng() % 255); return current;
    default: current.resize(current.empty() ? 0 : rng() % current.size()); return current;
  }
}

// Sets field `f` of `m` (element `i` when repeated, a new element when
// i == -1 and repeated) to an edge value derived from what it holds.
void SetScalar(Message* m, const FieldDescriptor* f, int i, Rng& rng) {
  const Reflection* r = m->GetReflection();
  bool add = f->is_repeated() && i < 0;
  auto get = [&]() -> uint64_t {
    if (add) return 0;
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32: return static_cast<uint64_t>(f->is_repeated() ? r->GetRepeatedInt32(*m, f, i) : r->GetInt32(*m, f));
      case FieldDescriptor::CPPTYPE_INT64: return static_cast<uint64_t>(f->is_repeated() ? r->GetRepeatedInt64(*m, f, i) : r->GetInt64(*m, f));
      case FieldDescriptor::CPPTYPE_UINT32: return f->is_repeated() ? r->GetRepeatedUInt32(*m, f, i) : r->GetUInt32(*m, f);
      case FieldDescriptor::CPPTYPE_UINT64: return f->is_repeated() ? r->GetRepeatedUInt64(*m, f, i) : r->GetUInt64(*m, f);
      case FieldDescriptor::CPPTYPE_ENUM: return static_cast<uint64_t>(f->is_repeated() ? r->GetRepeatedEnumValue(*m, f, i) : r->GetEnumValue(*m, f));
      default: return 0;
    }
  };
  uint64_t v = EdgeInteger(rng, get());
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32: {
      int32_t x = static_cast<int32_t>(v);
      add ? r->AddInt32(m, f, x) : f->is_repeated() ? r->SetRepeatedInt32(m, f, i, x) : r->SetInt32(m, f, x);
      break;
    }
    case FieldDescriptor::CPPTYPE_INT64: {
      int64_t x = static_cast<int64_t>(v);
      add ? r->AddInt64(m, f, x) : f->is_repeated() ? r->SetRepeatedInt64(m, f, i, x) : r->SetInt64(m, f, x);
      break;
    }
    case FieldDescriptor::CPPTYPE_UINT32: {
      uint32_t x = static_cast<uint32_t>(v);
      add ? r->AddUInt32(m, f, x) : f->is_repeated() ? r->SetRepeatedUInt32(m, f, i, x) : r->SetUInt32(m, f, x);
      break;
    }
    case FieldDescriptor::CPPTYPE_UINT64:
      add ? r->AddUInt64(m, f, v) : f->is_repeated() ? r->SetRepeatedUInt64(m, f, i, v) : r->SetUInt64(m, f, v);
      break;
    case FieldDescriptor::CPPTYPE_ENUM: {
      // A value of the enum, or one outside it (proto3 enums are open).
      int x = rng() % 4 ? f->enum_type()->value(static_cast<int>(rng() % f->enum_type()->value_count()))->number()
                        : static_cast<int>(v % 64);
      add ? r->AddEnumValue(m, f, x) : f->is_repeated() ? r->SetRepeatedEnumValue(m, f, i, x) : r->SetEnumValue(m, f, x);
      break;
    }
    case FieldDescriptor::CPPTYPE_BOOL: {
      bool x = (v & 1) != 0;
      add ? r->AddBool(m, f, x) : f->is_repeated() ? r->SetRepeatedBool(m, f, i, x) : r->SetBool(m, f, !r->GetBool(*m, f));
      break;
    }
    case FieldDescriptor::CPPTYPE_STRING: {
      bool bytes = f->type() == FieldDescriptor::TYPE_BYTES;
      std::string now = add ? "" : f->is_repeated() ? r->GetRepeatedString(*m, f, i) : r->GetString(*m, f);
      std::string x = EdgeString(rng, now, bytes);
      if (!bytes && !std::all_of(x.begin(), x.end(), [](char c) { return c > 0; })) x = "x";  // proto3 strings are UTF-8
      add ? r->AddString(m, f, x) : f->is_repeated() ? r->SetRepeatedString(m, f, i, x) : r->SetString(m, f, x);
      break;
    }
    default: break;  // no floating point in the image schema
  }
}

void MutateMessage(Message* m, Rng& rng, int depth) {
  const google::protobuf::Descriptor* d = m->GetDescriptor();
  const Reflection* r = m->GetReflection();
  if (d->field_count() == 0) return;
  // Mostly a field the record has: that is where the validator looks.
  std::vector<const FieldDescriptor*> set;
  r->ListFields(*m, &set);
  const FieldDescriptor* f = !set.empty() && rng() % 4 ? set[rng() % set.size()]
                                                        : d->field(static_cast<int>(rng() % d->field_count()));
  bool nested = f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE;
  if (!f->is_repeated()) {
    if (!nested) return SetScalar(m, f, -1, rng);
    if (depth < 3 && rng() % 8) return MutateMessage(r->MutableMessage(m, f), rng, depth + 1);
    return r->ClearField(m, f);
  }
  int n = r->FieldSize(*m, f);
  switch (rng() % 6) {
    case 0:
      if (n > 0) r->RemoveLast(m, f);
      return;
    case 1:
      if (n > 1) r->SwapElements(m, f, static_cast<int>(rng() % n), static_cast<int>(rng() % n));
      return;
    case 2:  // a copy of an element, perhaps changed: duplicates and overlaps
      if (!nested) return SetScalar(m, f, -1, rng);
      if (n > 0) {
        Message* copy = r->AddMessage(m, f);
        copy->CopyFrom(r->GetRepeatedMessage(*m, f, static_cast<int>(rng() % n)));
        if (rng() % 2) MutateMessage(copy, rng, depth + 1);
        if (rng() % 2) r->SwapElements(m, f, n, static_cast<int>(rng() % (n + 1)));
      } else {
        MutateMessage(r->AddMessage(m, f), rng, depth + 1);
      }
      return;
    default:
      if (n == 0) return nested ? MutateMessage(r->AddMessage(m, f), rng, depth + 1) : SetScalar(m, f, -1, rng);
      if (nested) return MutateMessage(r->MutableRepeatedMessage(m, f, static_cast<int>(rng() % n)), rng, depth + 1);
      return SetScalar(m, f, static_cast<int>(rng() % n), rng);
  }
}

std::unique_ptr<Message> NewRecord(size_t part) {
  if (part == 0) return std::make_unique<pb::Inventory>();
  if (part == 1) return std::make_unique<pb::FileTable>();
  return std::make_unique<pb::ProcessImage>();
}

// Changes one to three fields of one record of `input`; false if the record
// it picked does not decode.
bool MutateRecord(std::string* input, Rng& rng) {
  std::vector<std::string> parts = SplitParts(*input);
  size_t i = rng() % parts.size();
  if (parts[i].size() < 1 + sizeof(ImageFileHeader)) return false;
  std::unique_ptr<Message> record = NewRecord(i);
  if (!record->ParseFromArray(parts[i].data() + 1 + sizeof(ImageFileHeader),
                              static_cast<int>(parts[i].size() - 1 - sizeof(ImageFileHeader)))) {
    return false;
  }
  for (int n = 1 + static_cast<int>(rng() % 3); n > 0; --n) MutateMessage(record.get(), rng, 0);
  std::string file = parts[i].substr(1, sizeof(ImageFileHeader)) + record->SerializeAsString();
  Reseal(&file);
  parts[i] = std::string(1, static_cast<char>(parts[i][0] | kReseal)) + file;
  input->clear();
  for (size_t k = 0; k < parts.size(); ++k) {
    if (k > 0) *input += kPartSeparator;
    *input += parts[k];
  }
  return true;
}

// Inputs holding the whole seed images, well formed: a third of the record
// mutations start from one of them, so that ValidateImage meets images wrong
// in one or two places only, whatever the corpus has drifted to.
std::vector<std::string>& PristineInputs() {
  static std::vector<std::string> inputs;
  return inputs;
}

// ---- seeds ------------------------------------------------------------------------------------

constexpr int kRoot = 4242;
constexpr uint64_t kShmemId = 77;

[[noreturn]] void SeedFailed(const std::string& what) {
  std::fprintf(stderr, "image_fuzz: cannot write seeds: %s\n", what.c_str());
  std::exit(1);
}

struct SeedImage {
  std::string dir;  // scratch, for the real writers
  pb::Inventory inventory;
  std::map<std::string, std::string> files;  // name -> bytes as written

  void Add(const std::string& name, const std::string& bytes, uint64_t xxh3) {
    files[name] = bytes;
    pb::ImageFileSum* s = inventory.add_files();
    s->set_name(name);
    s->set_size(bytes.size());
    s->set_xxh3(xxh3);
  }
  std::string Read(const std::string& path) {
    Result<std::string> bytes = ReadFile(path);
    if (!bytes.ok()) SeedFailed(bytes.status().message());
    unlink(path.c_str());
    return *bytes;
  }
  void Record(const std::string& name, ImageFileKind kind, const google::protobuf::Message& m) {
    Result<ImageFileHeader> h = WriteRecordFile(dir + "/" + name, kind, m);
    if (!h.ok()) SeedFailed(h.status().message());
    std::string bytes = Read(dir + "/" + name);
    if (bytes != RecordBytes(kind, m)) SeedFailed("WriteRecordFile and this target disagree on the record layout");
    Add(name, bytes, h->payload_xxh3);
  }
  void Payload(const std::string& name, ImageFileKind kind, uint64_t npages) {
    PayloadFileWriter w;
    Status st = w.Open(dir + "/" + name, kind);
    std::string page(kPage, '\0');
    for (uint64_t i = 0; st.ok() && i < npages; ++i) {
      memset(page.data(), static_cast<int>('a' + i % 26), page.size());
      Result<uint64_t> at = w.Append(page.data(), page.size());
      if (!at.ok()) st = at.status();
    }
    Result<ImageFileHeader> h = st.ok() ? w.Finish() : Result<ImageFileHeader>(st);
    if (!h.ok()) SeedFailed(h.status().message());
    Add(name, Read(dir + "/" + name), h->payload_xxh3);
  }
};

pb::FileDesc* AddFile(pb::FileTable* t, pb::FileKind kind, uint32_t flags, const std::string& path) {
  pb::FileDesc* d = t->add_files();
  d->set_id(static_cast<uint32_t>(t->files_size()));
  d->set_kind(kind);
  d->set_flags(flags);
  d->set_path(path);
  d->set_owner_pid(kRoot);
  return d;
}

// Every kind of file a small tree holds. Ids: 1 the executable, 2 /dev/null,
// 3 and 4 the ends of a pipe, 5 a file mapped shared, 6 an eventfd, 7 an epoll
// watching it, 8 the inherited terminal, 9 a deleted file, 10 a timerfd,
// 11 a signalfd, 12 an inotify instance, 13 a FIFO, 14 a directory.
pb::FileTable SeedFileTable() {
  pb::FileTable t;
  pb::FileDesc* exe = AddFile(&t, pb::FILE_REGULAR, 0, "/usr/bin/roam-fuzz-app");
  exe->set_size(123456);
  exe->set_mode(0100755);
  AddFile(&t, pb::FILE_CHARDEV, 02, "/dev/null");
  AddFile(&t, pb::FILE_PIPE, 0, "")->set_pipe_ino(9001);
  AddFile(&t, pb::FILE_PIPE, 01, "")->set_pipe_ino(9001);
  pb::FileDesc* shared = AddFile(&t, pb::FILE_REGULAR, 02, "/var/tmp/roam-fuzz/shared.dat");
  shared->set_size(8192);
  shared->set_pos(100);
  AddFile(&t, pb::FILE_EVENTFD, 04002, "")->set_eventfd_count(3);
  pb::EpollTarget* target = AddFile(&t, pb::FILE_EPOLL, 02, "")->add_epoll();
  target->set_tfd(5);
  target->set_events(1);
  target->set_data(0xfeed);
  target->set_file_id(6);
  AddFile(&t, pb::FILE_INHERITED, 02, "")->set_inherit_fd(1);
  pb::FileDesc* deleted = AddFile(&t, pb::FILE_REGULAR, 02, "/var/tmp/roam-fuzz/scratch (deleted)");
  deleted->set_deleted(true);
  deleted->set_size(5000);
  deleted->set_content_file("content-9.img");
  pb::FileDesc* timer = AddFile(&t, pb::FILE_TIMERFD, 0, "");
  timer->set_clockid(1);
  timer->set_value_ns(250'000'000);
  timer->set_interval_ns(1'000'000'000);
  timer->set_ticks(2);
  AddFile(&t, pb::FILE_SIGNALFD, 0, "")->set_signalfd_mask(1ull << 9);
  pb::InotifyWatch* watch = AddFile(&t, pb::FILE_INOTIFY, 0, "")->add_watches();
  watch->set_wd(1);
  watch->set_mask(0x100);
  watch->set_path("/var/tmp/roam-fuzz");
  AddFile(&t, pb::FILE_FIFO, 0, "/var/tmp/roam-fuzz/fifo")->set_pipe_ino(9002);
  AddFile(&t, pb::FILE_DIRECTORY, 0, "/var/tmp/roam-fuzz");
  pb::Pipe* pipe = t.add_pipes();
  pipe->set_ino(9001);
  pipe->set_capacity(65536);
  pipe->set_data("buffered at dump time");
  pb::SharedMemory* shm = t.add_shmems();
  shm->set_id(kShmemId);
  shm->set_size(3 * kPage);
  shm->set_pages_file("shmem-77.img");
  pb::PageRun* run = shm->add_pages();
  run->set_vaddr(kPage);
  run->set_npages(2);
  run->set_offset(kPageHeaderSize);
  return t;
}

pb::Vma* AddVma(pb::ProcessImage* p, uint64_t start, uint64_t end, uint32_t prot, pb::VmaKind kind,
                const std::string& name) {
  pb::Vma* v = p->add_vmas();
  v->set_start(start);
  v->set_end(end);
  v->set_prot(prot);
  v->set_kind(kind);
  v->set_name(name);
  v->add_vm_flags("rd");
  if (prot & 2) v->add_vm_flags("wr");
  return v;
}

void AddRun(pb::ProcessImage* p, uint64_t vaddr, uint64_t npages, uint64_t* next_offset) {
  pb::PageRun* r = p->add_pages();
  r->set_vaddr(vaddr);
  r->set_npages(npages);
  r->set_offset(*next_offset);
  *next_offset += npages * kPage;
}

// A process as the dumper writes it; `full` gives it every kind of mapping
// and fd. Returns the number of pages its page file must hold.
uint64_t SeedProcess(int pid, int ppid, bool full, pb::ProcessImage* p) {
  p->set_pid(pid);
  p->set_ppid(ppid);
  p->set_pgid(kRoot);
  p->set_sid(kRoot);
  p->set_comm("roam-fuzz-app");
  p->set_gpregs(std::string(sizeof(user_regs_struct), '\x11'));
  p->set_xsave(std::string(832, '\0'));
  p->set_blocked(1ull << 9);
  pb::SigAction* sa = p->add_sigactions();
  sa->set_signo(2);
  sa->set_handler(0x401230);
  sa->set_flags(0x04000000);
  sa->set_restorer(0x7f0000201000);
  p->add_pending_thread(std::string(128, '\x02'));
  p->add_pending_shared(std::string(128, '\x0a'));
  p->set_rseq_addr(0x7ffd00020020);
  p->set_rseq_len(32);
  p->set_rseq_sig(0x53053053);
  p->set_clear_child_tid(0x7ffd00020100);
  p->set_dumpable(1);

  pb::MmFields* mm = p->mutable_mm();
  mm->set_start_code(0x400000);
  mm->set_end_code(0x401000);
  mm->set_start_data(0x403000);
  mm->set_end_data(0x404000);
  mm->set_start_brk(0x405000);
  mm->set_brk(0x426000);
  mm->set_start_stack(0x7ffd00020ff0);
  mm->set_auxv(std::string(32 * 16, '\x01'));
  mm->set_exe_file_id(1);

  AddVma(p, 0x400000, 0x401000, 5, pb::VMA_FILE_PRIVATE, "/usr/bin/roam-fuzz-app")->set_file_id(1);
  pb::Vma* ro = AddVma(p, 0x401000, 0x403000, 1, pb::VMA_FILE_PRIVATE, "/usr/bin/roam-fuzz-app");
  ro->set_file_id(1);
  ro->set_pgoff(0x1000);
  pb::Vma* data = AddVma(p, 0x403000, 0x404000, 3, pb::VMA_FILE_PRIVATE, "/usr/bin/roam-fuzz-app");
  data->set_file_id(1);
  data->set_pgoff(0x3000);
  AddVma(p, 0x405000, 0x426000, 3, pb::VMA_ANON_PRIVATE, "[heap]");
  if (full) {
    AddVma(p, 0x7f0000000000, 0x7f0000003000, 3, pb::VMA_ANON_SHARED, "/dev/zero (deleted)")->set_shmem_id(kShmemId);
    AddVma(p, 0x7f0000100000, 0x7f0000102000, 3, pb::VMA_FILE_SHARED, "/var/tmp/roam-fuzz/shared.dat")->set_file_id(5);
  }
  pb::Vma* stack = AddVma(p, 0x7ffd00000000, 0x7ffd00021000, 3, pb::VMA_ANON_PRIVATE, "[stack]");
  stack->set_growsdown(true);
  stack->add_vm_flags("gd");
  AddVma(p, 0x7ffd00100000, 0x7ffd00104000, 1, pb::VMA_VVAR, "[vvar]");
  if (full) AddVma(p, 0x7ffd00104000, 0x7ffd00105000, 1, pb::VMA_VVAR_VCLOCK, "[vvar_vclock]");
  AddVma(p, 0x7ffd00105000, 0x7ffd00107000, 5, pb::VMA_VDSO, "[vdso]");

  p->set_pages_file("pages-" + std::to_string(pid) + ".img");
  uint64_t offset = kPageHeaderSize;
  AddRun(p, 0x403000, 1, &offset);
  AddRun(p, 0x405000, 2, &offset);
  AddRun(p, 0x410000, 4, &offset);
  AddRun(p, 0x7ffd0001f000, 2, &offset);

  auto fd = [&](int n, uint32_t file, bool cloexec) {
    pb::Fd* f = p->add_fds();
    f->set_fd(n);
    f->set_file_id(file);
    f->set_cloexec(cloexec);
  };
  fd(0, 2, false);
  fd(1, 8, false);
  fd(2, 8, false);
  fd(3, 3, true);
  fd(4, 4, true);
  if (full) {
    fd(5, 6, true);
    fd(6, 7, true);
    fd(7, 9, false);
    fd(8, 10, true);
    fd(9, 11, true);
    fd(10, 12, true);
    fd(11, 5, false);
    fd(12, 13, false);
    fd(13, 14, true);
  }
  p->set_cwd("/var/tmp/roam-fuzz");
  p->set_root("/");
  p->set_umask(022);
  pb::Rlimit* nofile = p->add_rlimits();
  nofile->set_resource(7);
  nofile->set_cur(1024);
  nofile->set_max(524288);
  pb::Creds* c = p->mutable_creds();
  for (int i = 0; i < 4; ++i) {
    c->add_uids(1000);
    c->add_gids(1000);
  }
  c->add_groups(1000);
  c->add_groups(27);
  c->set_cap_bnd(0x1ffffffffff);
  pb::ITimer* it = p->add_itimers();
  it->set_value_ns(500'000'000);
  it->set_interval_ns(500'000'000);
  pb::PosixTimer* pt = p->add_posix_timers();
  pt->set_clockid(1);
  pt->set_signo(14);
  pt->set_notify(0);
  pt->set_value_ns(1'000'000);
  return (offset - kPageHeaderSize) / kPage;
}

// A tree of `nprocs` processes, each the child of the one before, written
// into `seed.files`; the inventory last, listing them.
SeedImage SeedTree(const std::string& dir, int nprocs) {
  SeedImage seed;
  seed.dir = dir;
  pb::FileTable table = SeedFileTable();
  seed.Record(kFileTableFile, ImageFileKind::kFileTable, table);
  seed.Payload("shmem-77.img", ImageFileKind::kPages, 3);
  seed.Payload("content-9.img", ImageFileKind::kContent, 2);
  for (int i = 0; i < nprocs; ++i) {
    pb::ProcessImage p;
    uint64_t npages = SeedProcess(kRoot + i, i == 0 ? 1 : kRoot + i - 1, i == 0, &p);
    seed.Record(CoreFileName(p.pid()), ImageFileKind::kProcess, p);
    seed.Payload(p.pages_file(), ImageFileKind::kPages, npages);
    seed.inventory.add_pids(p.pid());
  }
  pb::Inventory& inv = seed.inventory;
  inv.set_image_version(kImageVersion);
  inv.set_arch("x86_64");
  inv.set_kernel_release("6.1.0-roam-fuzz");
  inv.set_vdso_xxh3(0x0123456789abcdef);
  inv.set_vdso_size(2 * kPage);
  inv.set_xfeatures(7);
  inv.set_xsave_size(832);
  inv.set_root_pid(kRoot);
  inv.set_dump_realtime_ns(1'700'000'000'000'000'000);
  inv.set_freeze_ns(3'500'000);
  return seed;
}

// The fuzz input for `seed`: inventory, file table, processes.
std::string Input(SeedImage& seed, uint8_t flags) {
  std::string inventory = RecordBytes(ImageFileKind::kInventory, seed.inventory);
  std::vector<std::string> files{inventory, seed.files[kFileTableFile]};
  for (int pid : seed.inventory.pids()) files.push_back(seed.files[CoreFileName(pid)]);
  std::string out;
  for (const std::string& f : files) {
    if (f.find(kPartSeparator) != std::string::npos) SeedFailed("a record holds the part separator");
    if (!out.empty()) out += kPartSeparator;
    out += static_cast<char>(flags);
    out += f;
  }
  return out;
}

// The image the seed holds must pass the reader, or it seeds nothing.
void CheckSeedValid(SeedImage& seed) {
  Image image;
  image.inventory = seed.inventory;
  if (!ParseRecordBytes(kFileTableFile, seed.files[kFileTableFile], ImageFileKind::kFileTable, &image.files).ok()) {
    SeedFailed("file table unreadable");
  }
  for (int pid : seed.inventory.pids()) {
    pb::ProcessImage p;
    if (!ParseRecordBytes("core", seed.files[CoreFileName(pid)], ImageFileKind::kProcess, &p).ok()) SeedFailed("core unreadable");
    image.procs.push_back(p);
  }
  for (const pb::ImageFileSum& s : seed.inventory.files()) {
    if (IsPayloadName(s.name())) image.payload_sizes[s.name()] = s.size() - kPageHeaderSize;
  }
  Status st = ValidateImage(image);
  if (!st.ok()) SeedFailed("seed image refused: " + st.message());
  CheckAcceptedImage(image);
}

void MakePristineInputs() {
  char scratch[] = "/tmp/image_fuzz.XXXXXX";
  if (mkdtemp(scratch) == nullptr) SeedFailed(std::string("mkdtemp: ") + strerror(errno));
  for (int nprocs : {3, 1}) {
    SeedImage seed = SeedTree(scratch, nprocs);
    CheckSeedValid(seed);
    PristineInputs().push_back(Input(seed, 0));
  }
  rmdir(scratch);
}

void WriteSeeds(const std::string& dir) {
  std::string scratch = dir + "/.writing";
  if (Status st = MakeDirs(scratch, 0700); !st.ok()) SeedFailed(st.message());
  std::vector<std::pair<std::string, std::string>> seeds;
  seeds.emplace_back("empty", "");

  SeedImage tree = SeedTree(scratch, 3);
  SeedImage single = SeedTree(scratch, 1);
  CheckSeedValid(tree);
  CheckSeedValid(single);
  seeds.emplace_back("tree_sealed", Input(tree, 0));
  seeds.emplace_back("tree_reseal", Input(tree, kReseal));
  seeds.emplace_back("single_reseal", Input(single, kReseal));

  std::string corrupt = Input(single, 0);
  corrupt[corrupt.size() - 100] ^= 0x20;  // in the process record's payload
  seeds.emplace_back("single_corrupt", corrupt);

  pb::Inventory newer = single.inventory;
  newer.set_image_version(kImageVersion + 1);
  std::string newer_file = RecordBytes(ImageFileKind::kInventory, newer);
  newer_file[8] = static_cast<char>(kImageVersion + 1);  // the header's version
  seeds.emplace_back("newer_inventory", std::string(1, '\0') + newer_file);

  // A page file on its own (checked as a page and a content header).
  single.Payload("pages-1.img", ImageFileKind::kPages, 1);
  seeds.emplace_back("pages_file", std::string(1, '\0') + single.files["pages-1.img"]);
  // A record in a page file's place and the other way round.
  seeds.emplace_back("kinds_swapped", std::string(1, '\0') + tree.files[kFileTableFile] + std::string(kPartSeparator) +
                                          std::string(1, '\0') + RecordBytes(ImageFileKind::kInventory, tree.inventory));

  for (const auto& [name, bytes] : seeds) {
    std::ofstream f(dir + "/" + name, std::ios::binary | std::ios::trunc);
    f << bytes;
    if (!f) SeedFailed(dir + "/" + name);
  }
  rmdir(scratch.c_str());
  std::fprintf(stderr, "image_fuzz: wrote %zu seeds to %s\n", seeds.size(), dir.c_str());
}

}  // namespace
}  // namespace roam

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // libprotobuf logs every string field that is not UTF-8: only noise here.
  google::protobuf::SetLogHandler(nullptr);
  if (const char* dir = std::getenv("ROAM_FUZZ_WRITE_SEEDS")) {
    roam::WriteSeeds(dir);
    std::exit(0);
  }
  roam::MakePristineInputs();
  return 0;
}

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size, unsigned int seed) {
  roam::Rng rng(seed);
  unsigned how = rng() % 6;
  if (how < 3) {
    const std::vector<std::string>& pristine = roam::PristineInputs();
    std::string input = how == 0 ? pristine[rng() % pristine.size()] : std::string(reinterpret_cast<const char*>(data), size);
    if (roam::MutateRecord(&input, rng) && input.size() <= max_size) {
      memcpy(data, input.data(), input.size());
      return input.size();
    }
  }
  return LLVMFuzzerMutate(data, size, max_size);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  roam::FuzzImage(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
