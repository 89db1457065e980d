// Pipes and FIFOs. A pipe is restored only when both of its ends are in
// the tree (files.cc makes a pipe leading outside an inherited fd or refuses
// it). The bytes buffered in a pipe at dump time are copied out with tee(2),
// which leaves them in place for a process that keeps running, and written
// back into the new pipe before anyone can read.
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <map>

#include "ckpt/files.h"

namespace roam {

Status DumpPipe(const FdSource& src, pb::FileDesc* desc) {
  desc->set_kind(pb::FILE_PIPE);
  desc->set_pipe_ino(src.st.st_ino);
  return Status::Ok();
}

Status DumpPipeData(pid_t pid, int fd, bool fifo, pb::Pipe* pipe) {
  std::string who = "pid " + std::to_string(pid) + " fd " + std::to_string(fd);
  int ours = -1;
  if (fifo) {
    // A new reading description of the same FIFO, which never blocks.
    std::string path = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
    ours = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (ours < 0) return Status::Errno(who + ": reopen FIFO");
  } else {
    int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
    if (pidfd < 0) return Status::Errno("pidfd_open " + std::to_string(pid));
    ours = static_cast<int>(syscall(SYS_pidfd_getfd, pidfd, fd, 0));
    int err = errno;
    close(pidfd);
    if (ours < 0) return Status::Errno(who + ": pidfd_getfd", err);
  }
  int capacity = fcntl(ours, F_GETPIPE_SZ);
  pipe->set_capacity(capacity > 0 ? static_cast<uint32_t>(capacity) : 65536);
  int tmp[2];
  if (pipe2(tmp, O_CLOEXEC | O_NONBLOCK) != 0) {
    close(ours);
    return Status::Errno("pipe2");
  }
  fcntl(tmp[1], F_SETPIPE_SZ, capacity);
  ssize_t n = tee(ours, tmp[1], static_cast<size_t>(capacity), SPLICE_F_NONBLOCK);
  Status st;
  if (n < 0 && errno != EAGAIN) st = Status::Errno(who + ": tee of the pipe's buffered data");
  if (n > 0) {
    std::string data(static_cast<size_t>(n), '\0');
    if (read(tmp[0], data.data(), data.size()) != n) st = Status::Error(who + ": short read of pipe data");
    pipe->set_data(std::move(data));
  }
  close(tmp[0]);
  close(tmp[1]);
  close(ours);
  return st;
}

namespace {

Status WriteData(int fd, const std::string& data, const std::string& what) {
  int fl = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  ssize_t n = data.empty() ? 0 : write(fd, data.data(), data.size());
  fcntl(fd, F_SETFL, fl);
  if (n != static_cast<ssize_t>(data.size())) return Status::Errno("refill " + what + " with its buffered data");
  return Status::Ok();
}

Status SetStatusFlags(int fd, uint32_t flags) {
  int keep = static_cast<int>(flags) & (O_NONBLOCK | O_APPEND | O_ASYNC | O_DIRECT | O_NOATIME);
  if (fcntl(fd, F_SETFL, keep) != 0) return Status::Errno("fcntl F_SETFL");
  return Status::Ok();
}

// Another description of the same pipe end.
Result<int> Reopen(int fd, uint32_t flags) {
  std::string path = "/proc/self/fd/" + std::to_string(fd);
  int r = open(path.c_str(), (static_cast<int>(flags) & O_ACCMODE) | O_CLOEXEC | O_NONBLOCK);
  if (r < 0) return Status::Errno("reopen " + path);
  return r;
}

}  // namespace

Status OpenPipes(const pb::FileTable& table, const std::map<std::string, std::string>& recreated,
                 std::map<uint32_t, int>* fds) {
  std::map<uint64_t, const pb::Pipe*> data;
  for (const pb::Pipe& p : table.pipes()) data[p.ino()] = &p;
  std::map<uint64_t, std::pair<int, int>> pipes;  // ino -> (read, write), -1 once handed out
  std::map<uint64_t, int> keepers;                // FIFO ino -> O_RDWR fd held while opening
  Status st;
  for (const pb::FileDesc& d : table.files()) {
    if (!st.ok()) break;
    bool reader = (d.flags() & O_ACCMODE) == O_RDONLY;
    if (d.kind() == pb::FILE_PIPE) {
      auto it = pipes.find(d.pipe_ino());
      if (it == pipes.end()) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) != 0) return Status::Errno("pipe2");
        const pb::Pipe* pd = data.count(d.pipe_ino()) ? data[d.pipe_ino()] : nullptr;
        if (pd != nullptr) {
          if (pd->capacity() > 0) fcntl(p[1], F_SETPIPE_SZ, pd->capacity());
          st = WriteData(p[1], pd->data(), "pipe");
        }
        it = pipes.emplace(d.pipe_ino(), std::make_pair(p[0], p[1])).first;
      }
      int& end = reader ? it->second.first : it->second.second;
      int fd = end;
      if (fd >= 0) {
        end = -1;  // the first description of this end takes the original fd
      } else {
        // The original was handed out already: find it and reopen.
        Result<int> r = Status::Error("no open end");
        for (const pb::FileDesc& o : table.files()) {
          if (o.id() == d.id() || o.kind() != pb::FILE_PIPE || o.pipe_ino() != d.pipe_ino()) continue;
          if (((o.flags() & O_ACCMODE) == O_RDONLY) != reader || !fds->count(o.id())) continue;
          r = Reopen((*fds)[o.id()], d.flags());
          break;
        }
        if (!r.ok()) return r.status();
        fd = *r;
      }
      st = SetStatusFlags(fd, d.flags());
      (*fds)[d.id()] = fd;
    } else if (d.kind() == pb::FILE_FIFO) {
      auto made = recreated.find(DeletedKey(d));
      const std::string path = d.deleted() && made != recreated.end() ? made->second : d.path();
      if (!keepers.count(d.pipe_ino())) {
        int k = open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
        if (k < 0) return Status::Errno("open FIFO " + path);
        keepers[d.pipe_ino()] = k;
        if (data.count(d.pipe_ino())) st = WriteData(k, data[d.pipe_ino()]->data(), "FIFO " + path);
      }
      int fd = open(path.c_str(), (static_cast<int>(d.flags()) & O_ACCMODE) | O_NONBLOCK | O_CLOEXEC);
      if (fd < 0) return Status::Errno("open FIFO " + path);
      if (st.ok()) st = SetStatusFlags(fd, d.flags());
      (*fds)[d.id()] = fd;
    }
  }
  for (auto& [ino, p] : pipes) {
    if (p.first >= 0) close(p.first);
    if (p.second >= 0) close(p.second);
  }
  for (auto& [ino, k] : keepers) close(k);
  return st;
}

}  // namespace roam
