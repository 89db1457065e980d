#include "node/file_identity.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include <spdlog/spdlog.h>

#include "ckpt/files.h"
#include "ckpt/image.h"
#include "ckpt/image_file.h"
#include "common/file_util.h"
#include "common/proc_fdinfo.h"
#include "common/proc_maps.h"
#include "common/proc_stat.h"

namespace roam {

namespace {

std::string Readlink(const std::string& path) {
  char buf[4096];
  ssize_t n = readlink(path.c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

int64_t MtimeNs(const struct stat& st) { return st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec; }

}  // namespace

Result<std::vector<pb::FileIdentity>> TreeFileIdentities(pid_t root, std::vector<std::string>* carried) {
  std::vector<pb::FileIdentity> out;
  std::set<std::string> seen;
  std::set<std::string> written;  // open for writing by some process of the tree
  auto add = [&](const std::string& path, bool want_dir) {
    if (path.empty() || path[0] != '/' || !seen.insert(path).second) return;
    if (!want_dir && CarriedWithProcess(path)) {
      // POSIX shared memory is listed by identity below (PosixShmOf).
      if (carried != nullptr && !IsPosixSharedMemory(path)) carried->push_back(path);
      return;
    }
    struct stat st;
    if (stat(path.c_str(), &st) != 0) return;  // gone meanwhile, or deleted: the image has it
    pb::FileIdentity f;
    f.set_path(path);
    if (want_dir || S_ISDIR(st.st_mode)) {
      if (!S_ISDIR(st.st_mode)) return;
      f.set_directory(true);
    } else {
      if (!S_ISREG(st.st_mode)) return;  // devices, sockets, pipes: not files to compare
      f.set_size(static_cast<uint64_t>(st.st_size));
      f.set_mtime_ns(MtimeNs(st));
    }
    out.push_back(std::move(f));
  };
  std::map<FileId, std::string> shm;  // carried, and must not be on the target
  for (pid_t pid : ReadProcessTree(root)) {
    PosixShmOf(pid, &shm);
    const std::string proc = "/proc/" + std::to_string(pid);
    Result<std::string> maps = ReadFile(proc + "/maps");
    // A child that exited since the tree was listed holds no file any more
    // (the dump records it as a zombie, or it is gone); the root must be.
    if (!maps.ok() && pid != root) continue;
    if (!maps.ok()) return Status::Error("pid " + std::to_string(pid) + ": no such process");
    if (std::string cwd = Readlink(proc + "/cwd"); !LinkDeleted(cwd)) add(cwd, true);  // a removed one goes with it
    if (DIR* d = opendir((proc + "/fd").c_str())) {
      while (dirent* e = readdir(d)) {
        if (e->d_name[0] == '.') continue;
        std::string target = Readlink(proc + "/fd/" + e->d_name);
        if (LinkDeleted(target)) continue;
        Result<std::string> info = ReadFile(proc + "/fdinfo/" + e->d_name);
        Result<FdInfo> fi = info.ok() ? ParseFdinfo(*info) : Result<FdInfo>(info.status());
        if (fi.ok() && (fi->flags & O_ACCMODE) != O_RDONLY) written.insert(target);
        add(target, false);
      }
      closedir(d);
    }
    Result<std::vector<VmaInfo>> vmas = ParseMaps(*maps);
    if (vmas.ok()) {
      for (const VmaInfo& v : *vmas) {
        if (!v.deleted) add(v.path, false);
      }
    }
  }
  for (pb::FileIdentity& f : out) {
    if (written.count(f.path())) f.set_written(true);
  }
  for (const auto& [id, path] : shm) {
    if (carried != nullptr) carried->push_back(path);
    pb::FileIdentity f;
    f.set_path(path);
    f.set_absent(true);
    out.push_back(std::move(f));
  }
  return out;
}

void RemoveCarriedFiles(const std::string& gpid, const std::vector<std::string>& carried, const char* why) {
  for (const std::string& path : carried) {
    if (unlink(path.c_str()) == 0) {
      spdlog::info("{}: removed {} ({})", gpid, path, why);
    } else if (errno != ENOENT) {
      spdlog::warn("{}: cannot remove {} ({}): {}", gpid, path, why, strerror(errno));
    }
  }
}

std::vector<std::string> CarriedFilesIn(const std::string& image_dir) {
  std::vector<std::string> out;
  pb::FileTable files;
  if (!ReadRecordFile(image_dir + "/" + kFileTableFile, ImageFileKind::kFileTable, &files).ok()) return out;
  for (const pb::FileDesc& d : files.files()) {
    if (d.carried() && CarriedWithProcess(d.path())) out.push_back(d.path());
  }
  return out;
}

namespace {

// One file: "" if it is here as described, else why not.
std::string CheckOne(const pb::FileIdentity& f, const std::string& node, StatFn stat_fn) {
  if (stat_fn == nullptr) stat_fn = [](const char* p, struct stat* st) { return ::stat(p, st); };
  struct stat st;
  if (f.absent()) {
    if (stat_fn(f.path().c_str(), &st) != 0) return "";
    return f.path() + " exists on " + node + " already (the process brings its own)";
  }
  if (stat_fn(f.path().c_str(), &st) != 0) {
    return (f.directory() ? "directory " : "") + f.path() + " is missing on " + node;
  }
  if (f.directory()) {
    if (!S_ISDIR(st.st_mode)) return f.path() + " is not a directory on " + node;
    return "";
  }
  if (!S_ISREG(st.st_mode)) return f.path() + " is not a regular file on " + node;
  if (f.written()) return "";  // the process itself changes it
  if (static_cast<uint64_t>(st.st_size) != f.size()) {
    return f.path() + " differs on " + node + " (size " + std::to_string(f.size()) + " at the source, " +
           std::to_string(st.st_size) + " here)";
  }
  if (MtimeNs(st) != f.mtime_ns()) return f.path() + " differs on " + node + " (modified at another time)";
  return "";
}

}  // namespace

std::string CheckFileIdentities(const std::vector<pb::FileIdentity>& files, const std::string& node, StatFn stat_fn,
                                std::string* failed_path) {
  for (const pb::FileIdentity& f : files) {
    std::string why = CheckOne(f, node, stat_fn);
    if (why.empty()) continue;
    if (failed_path) *failed_path = f.path();
    return why;
  }
  return "";
}

bool ListedFileChanged(const std::vector<pb::FileIdentity>& sent, const std::string& path, StatFn stat_fn) {
  for (const pb::FileIdentity& f : sent) {
    // The source's own copy of a carried object is where it was.
    if (f.path() == path) return !f.absent() && !CheckOne(f, "here", stat_fn).empty();
  }
  return false;
}


}  // namespace roam
