#include "ckpt/page_file_stage.h"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unordered_set>
#include <vector>

#include "ckpt/image.h"
#include "ckpt/image_file.h"

namespace roam {

namespace {

constexpr uint64_t kPage = 4096;

Status PwriteAll(int fd, const void* data, size_t len, uint64_t offset, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (len > 0) {
    ssize_t n = pwrite(fd, p, len, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::Errno("write " + path, n == 0 ? ENOSPC : errno);
    p += n;
    len -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

Status PreadAll(int fd, void* data, size_t len, uint64_t offset, const std::string& path) {
  char* p = static_cast<char*>(data);
  while (len > 0) {
    ssize_t n = pread(fd, p, len, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::Errno("read " + path);
    if (n == 0) return Status::Error(path + ": shorter than its page runs");
    p += n;
    len -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

}  // namespace

PageFileStage::PageFileStage(std::string dir, UniqueFd fd)
    : dir_(std::move(dir)), fd_(std::move(fd)), first_(kPageHeaderSize), end_(kPageHeaderSize) {}

Result<std::unique_ptr<PageFileStage>> PageFileStage::Create(const std::string& dir) {
  std::string path = dir + "/" + kFileName;
  unlink(path.c_str());
  UniqueFd fd(open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd.ok()) return Status::Errno("create " + path);
  return std::unique_ptr<PageFileStage>(new PageFileStage(dir, std::move(fd)));
}

Status PageFileStage::Write(uint64_t vaddr, const void* data, size_t len) {
  if (vaddr % kPage != 0 || len % kPage != 0) return Status::Error(StatusCode::kInvalid, "staged pages not page-aligned");
  const std::string path = dir_ + "/" + kFileName;
  const char* p = static_cast<const char*>(data);
  // Pages seen before are rewritten where they are; new ones, in runs, at
  // the end (a first round comes in address order, so the file does too).
  for (size_t i = 0; i < len;) {
    uint64_t page = vaddr + i;
    auto it = offset_of_.find(page);
    size_t n = kPage;
    uint64_t at;
    if (it != offset_of_.end()) {
      at = it->second;
    } else {
      at = end_;
      while (i + n < len && !offset_of_.count(page + n)) n += kPage;
      for (size_t k = 0; k < n; k += kPage) offset_of_[page + k] = at + k;
      end_ += n;
    }
    Status st = PwriteAll(fd_.get(), p + i, n, at, path);
    if (!st.ok()) return st;
    i += n;
  }
  return Status::Ok();
}

Status PageFileStage::Fold(pid_t pid) {
  const std::string staged = dir_ + "/" + kFileName;
  pb::Inventory inv;
  Status st = ReadRecordFile(dir_ + "/" + kInventoryFile, ImageFileKind::kInventory, &inv);
  if (!st.ok()) return st;
  const std::string core_name = CoreFileName(pid);
  pb::ProcessImage proc;
  st = ReadRecordFile(dir_ + "/" + core_name, ImageFileKind::kProcess, &proc);
  if (!st.ok()) return st;

  // Every page the process will hold, with where it now is in the staged
  // file: the kept ones where they were staged, the saved ones copied in.
  std::vector<std::pair<uint64_t, uint64_t>> pages;  // (address, offset)
  for (const pb::PageRun& k : proc.kept()) {
    for (uint64_t a = k.vaddr(); a < k.vaddr() + k.npages() * kPage; a += kPage) {
      auto it = offset_of_.find(a);
      if (it == offset_of_.end()) {
        return Status::Error(StatusCode::kInternal,
                             "pre-copied page at " + std::to_string(a) + " is kept but was never staged");
      }
      pages.emplace_back(a, it->second);
    }
  }
  const std::string old_name = proc.pages_file();
  const std::string old_path = dir_ + "/" + old_name;
  UniqueFd old(open(old_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!old.ok()) return Status::Errno("open " + old_path);
  std::vector<char> buf;
  for (const pb::PageRun& r : proc.pages()) {
    const uint64_t len = r.npages() * kPage;
    buf.resize(len);
    st = PreadAll(old.get(), buf.data(), len, r.offset(), old_path);
    if (st.ok()) st = PwriteAll(fd_.get(), buf.data(), len, end_, staged);
    if (!st.ok()) return st;
    for (uint64_t k = 0; k < len; k += kPage) pages.emplace_back(r.vaddr() + k, end_ + k);
    end_ += len;
  }
  std::sort(pages.begin(), pages.end());
  for (size_t i = 1; i < pages.size(); ++i) {
    if (pages[i].first == pages[i - 1].first) {
      return Status::Error(StatusCode::kInternal, "a page is both kept and saved in the image");
    }
  }

  // The staged file's header: its payload's size and checksum.
  XXH3_state_t* hash = XXH3_createState();
  XXH3_64bits_reset(hash);
  buf.resize(4 << 20);
  for (uint64_t at = first_; at < end_ && st.ok();) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), end_ - at));
    st = PreadAll(fd_.get(), buf.data(), n, at, staged);
    XXH3_64bits_update(hash, buf.data(), n);
    at += n;
  }
  ImageFileHeader h = MakeImageHeader(ImageFileKind::kPages, end_ - first_, XXH3_64bits_digest(hash));
  XXH3_freeState(hash);
  if (!st.ok()) return st;
  std::string head(kPageHeaderSize, '\0');
  memcpy(head.data(), &h, sizeof(h));
  st = PwriteAll(fd_.get(), head.data(), head.size(), 0, staged);
  if (!st.ok()) return st;

  // The record: one run per stretch of pages that follow each other both
  // in memory and in the file, within one mapping (a run never spans two).
  std::unordered_set<uint64_t> starts;
  for (const pb::Vma& v : proc.vmas()) starts.insert(v.start());
  proc.clear_kept();
  proc.clear_pages();
  proc.set_pages_file(kFileName);
  pb::PageRun* run = nullptr;
  for (const auto& [addr, off] : pages) {
    if (run != nullptr && run->vaddr() + run->npages() * kPage == addr && run->offset() + run->npages() * kPage == off &&
        !starts.count(addr)) {
      run->set_npages(run->npages() + 1);
      continue;
    }
    run = proc.add_pages();
    run->set_vaddr(addr);
    run->set_offset(off);
    run->set_npages(1);
  }
  Result<ImageFileHeader> core = WriteRecordFile(dir_ + "/" + core_name, ImageFileKind::kProcess, proc);
  if (!core.ok()) return core.status();

  // The inventory lists the staged file instead of the old page file.
  bool listed = false;
  for (pb::ImageFileSum& f : *inv.mutable_files()) {
    if (f.name() == core_name) {
      f.set_size(core->header_size + core->payload_size);
      f.set_xxh3(core->payload_xxh3);
    } else if (f.name() == old_name) {
      f.set_name(kFileName);
      f.set_size(h.header_size + h.payload_size);
      f.set_xxh3(h.payload_xxh3);
      listed = true;
    }
  }
  if (!listed) return Status::Error(StatusCode::kInternal, "the image does not list " + old_name);
  Result<ImageFileHeader> written = WriteRecordFile(dir_ + "/" + kInventoryFile, ImageFileKind::kInventory, inv);
  if (!written.ok()) return written.status();
  unlink(old_path.c_str());
  return Status::Ok();
}

}  // namespace roam
