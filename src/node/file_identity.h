// The files a process tree depends on, and whether another node has the
// same ones: before a move freezes anything, the source lists every regular
// file the tree has open or mapped and every working directory, and the
// target checks each exists there with the same size and modification time
// (a lab's NFS or identical installs). A mismatch refuses the move with the
// file named, with the process untouched.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "common/status.h"
#include "migrate.pb.h"

namespace roam {

// Every process of `root`'s tree (through /proc/PID/task/PID/children):
// cwd, regular files behind fds, file-backed mappings. Deleted files are
// left out (the image carries their contents), and so are the files the
// image carries although they exist (CarriedWithProcess, ckpt/image.h: a
// JVM's perf-data file, POSIX shared memory), which go to `carried` if
// given. A POSIX shared memory object is listed too, as `absent`: the
// target must not have another by its name. Each path once.
Result<std::vector<pb::FileIdentity>> TreeFileIdentities(pid_t root, std::vector<std::string>* carried = nullptr);

// After a move's commit, at its source: the carried files of the tree
// that left (as TreeFileIdentities gave them) are the target's now. Also
// at a target where the move failed (CarriedFilesIn). `why` goes to the log.
void RemoveCarriedFiles(const std::string& gpid, const std::vector<std::string>& carried, const char* why);
// At a move's target: the carried files of the image in `image_dir` (none
// if its file table is not there). A move that fails there removes them:
// the process runs on at the source, with its own copy.
std::vector<std::string> CarriedFilesIn(const std::string& image_dir);

// "" if every file is here as described; else one line naming the first
// that is not, e.g. "/data/in.txt is missing on n3" or "/usr/lib/x.so
// differs on n3 (size 100 here, 120 there)". `stat_fn` is stat(2) for
// tests to replace.
// `failed_path` (if given) gets the path of that file.
using StatFn = int (*)(const char* path, struct stat* st);
std::string CheckFileIdentities(const std::vector<pb::FileIdentity>& files, const std::string& node,
                                StatFn stat_fn = nullptr, std::string* failed_path = nullptr);

// The race between the source's list and the target's check: a process
// that deletes or replaces a file (sort's spill files, a compiler's
// temporaries) may have done so since it was listed, and the target then
// refuses for a file the process no longer uses as listed. A target asks
// the source again (LinkReply.mismatch_path) up to kFileRechecks times; the
// source lists again if that file here is no longer what it sent.
constexpr int kFileRechecks = 3;
// Whether `path`, in the list `sent`, is no longer as listed here.
bool ListedFileChanged(const std::vector<pb::FileIdentity>& sent, const std::string& path, StatFn stat_fn = nullptr);

}  // namespace roam
