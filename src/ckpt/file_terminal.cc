// Terminals: the job's terminal travels as the restorer's, never by name.
//
// A terminal at fd 0-2 is inherited (FILE_INHERITED): the restorer hands
// over its own fd of that number, as a shell would. The same terminal
// opened again at another fd (an interactive bash keeps one at fd 255), or
// /dev/tty naming it, is FILE_TERMINAL: the restorer's fd reopened, so that
// it is a description of its own as before. Any other terminal is refused:
// its name means another device on another node.
//
// The slave of a pty pair whose master the tree holds is the pair's
// (FILE_PTY_SLAVE, file_pty.cc), at any fd and as /dev/tty.
//
// A session leader whose controlling terminal is the job's or a pair's
// slave keeps it: the dump records which FileDesc it is and the foreground
// process group (ProcessImage ctty_file, tpgid); the restore makes it the
// new session's controlling terminal (TIOCSCTTY, in the seed, just after
// setsid) and gives the foreground back (TIOCSPGRP, injected once the
// groups exist).
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "ckpt/files.h"
#include "ckpt/task_state.h"
#include "ckpt/tracee.h"

namespace roam {

bool IsTerminal(const struct stat& st) {
  if (!S_ISCHR(st.st_mode)) return false;
  unsigned major_nr = major(st.st_rdev);
  return (major_nr >= 136 && major_nr <= 143) || major_nr == 4 || (major_nr == 5 && minor(st.st_rdev) <= 1);
}

namespace {

bool IsDevTty(const struct stat& st) { return major(st.st_rdev) == 5 && minor(st.st_rdev) == 0; }

}  // namespace

dev_t TtyNrToDev(int tty_nr) {
  // proc(5): minor in bits 31-20 and 7-0, major in bits 15-8.
  const unsigned u = static_cast<unsigned>(tty_nr);
  return makedev((u >> 8) & 0xfff, (u & 0xff) | ((u >> 12) & 0xfff00));
}

void FileTableBuilder::NoteTerminal(const struct stat& st, int fd, uint32_t id) {
  if (IsTerminal(st) && !IsDevTty(st)) terminals_.emplace(st.st_rdev, std::make_pair(fd, id));
}

uint32_t FileTableBuilder::JobTerminal(dev_t rdev) const {
  auto it = terminals_.find(rdev);
  return it == terminals_.end() ? 0 : it->second.second;
}

uint32_t FileTableBuilder::FirstJobTerminal() const {
  std::pair<int, uint32_t> first{3, 0};
  for (const auto& [rdev, t] : terminals_) first = std::min(first, t);
  return first.second;
}

Status DumpTerminal(FileTableBuilder& b, const FdSource& src, int tty_nr, pb::FileDesc* desc) {
  desc->clear_path();
  const dev_t rdev = IsDevTty(src.st) ? TtyNrToDev(tty_nr) : src.st.st_rdev;
  if (std::optional<uint32_t> index = PtySlaveIndex(rdev); index && b.PtyMasterInTree(*index)) {
    desc->set_kind(pb::FILE_PTY_SLAVE);  // the slave of a pair of the tree (file_pty.cc)
    desc->set_pty_index(*index);
    return Status::Ok();
  }
  if (src.fd >= 0 && src.fd <= 2) {
    desc->set_kind(pb::FILE_INHERITED);
    desc->set_inherit_fd(src.fd);
    b.NoteTerminal(src.st, src.fd, desc->id());
    return Status::Ok();
  }
  auto it = b.terminals().find(rdev);
  if ((IsDevTty(src.st) && tty_nr == 0) || it == b.terminals().end()) {
    return Status::Error(StatusCode::kCantMove, "a terminal other than the job's own (" + src.link +
                                                    ") is not supported: its name is another device elsewhere");
  }
  desc->set_kind(pb::FILE_TERMINAL);
  desc->set_inherit_fd(it->second.first);
  return Status::Ok();
}

Result<int> OpenTerminal(const pb::FileDesc& desc, int restorer_fd) {
  const std::string path = "/proc/self/fd/" + std::to_string(restorer_fd);
  int fd = open(path.c_str(), static_cast<int>(desc.flags() & ~(O_CREAT | O_EXCL | O_TRUNC)) | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return Status::Errno("reopen the terminal at fd " + std::to_string(desc.inherit_fd()) + " of the restorer");
  return fd;
}

Status ResolveControllingTerminal(const FileTableBuilder& b, const ProcStat& ps, pb::ProcessImage* p) {
  if (ps.session != ps.pid || ps.tty_nr == 0) return Status::Ok();
  uint32_t id = b.JobTerminal(TtyNrToDev(ps.tty_nr));
  if (id == 0) id = b.PtySlave(TtyNrToDev(ps.tty_nr));
  if (id == 0) {
    return Status::Error(StatusCode::kCantMove, "pid " + std::to_string(ps.pid) +
                                                    ": its controlling terminal is neither the one at its fds 0-2 "
                                                    "nor a pseudo-terminal of the tree it holds, which is not "
                                                    "supported");
  }
  p->set_ctty_file(id);
  p->set_tpgid(ps.tpgid);
  return Status::Ok();
}

Status TakeControllingTerminal(int fd) {
  if (!isatty(fd)) return Status::Ok();  // the restorer gave no terminal: nothing to control
  if (ioctl(fd, TIOCSCTTY, 0) != 0) {
    return Status::Errno("make the inherited terminal its controlling terminal (it needs one of its own, "
                         "not one another session controls)");
  }
  return Status::Ok();
}

Status RestoreForeground(Tracee& t, uint64_t scratch, const pb::ProcessImage& proc, int fd, bool best_effort) {
  if (proc.ctty_file() == 0 || proc.tpgid() <= 0 || proc.tpgid() == proc.pgid() || fd < 0) return Status::Ok();
  const int32_t pgrp = proc.tpgid();
  Status st = t.WriteMemory(scratch, &pgrp, sizeof pgrp);
  if (st.ok()) st = t.SyscallOk("ioctl TIOCSPGRP", SYS_ioctl, static_cast<uint64_t>(fd), TIOCSPGRP, scratch).status();
  return best_effort ? Status::Ok() : st;
}

}  // namespace roam
