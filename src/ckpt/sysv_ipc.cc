// System V IPC objects, both sides (sysv_ipc.h says which and how).
#include "ckpt/sysv_ipc.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <sstream>

#include <fmt/format.h>

#include "ckpt/memory.h"
#include "common/file_util.h"

namespace roam {

namespace {

constexpr uint64_t kPage = 4096;
#ifndef MSG_COPY
constexpr int MSG_COPY = 040000;
#endif

union SemArg {
  int val;
  struct semid_ds* buf;
  unsigned short* array;
};

uint64_t PageUp(uint64_t n) { return (n + kPage - 1) / kPage * kPage; }

std::string KeyText(int key) { return fmt::format("0x{:08x}", static_cast<uint32_t>(key)); }

// The rows of /proc/sysvipc/WHAT (its header skipped), split on blanks.
std::vector<std::vector<long long>> Rows(const char* what) {
  std::vector<std::vector<long long>> rows;
  Result<std::string> text = ReadFile(std::string("/proc/sysvipc/") + what);
  if (!text.ok()) return rows;
  std::istringstream in(*text);
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::vector<long long> row;
    std::string f;
    for (int col = 0; fields >> f; ++col) row.push_back(strtoll(f.c_str(), nullptr, col == 2 ? 8 : 10));
    if (row.size() >= 8) rows.push_back(std::move(row));
  }
  return rows;
}

Result<std::vector<int>> SemValues(int id) {
  struct semid_ds ds {};
  SemArg arg;
  arg.buf = &ds;
  if (semctl(id, 0, IPC_STAT, arg) != 0) return Status::Errno("semctl IPC_STAT " + std::to_string(id));
  std::vector<unsigned short> v(ds.sem_nsems);
  arg.array = v.data();
  if (semctl(id, 0, GETALL, arg) != 0) return Status::Errno("semctl GETALL " + std::to_string(id));
  return std::vector<int>(v.begin(), v.end());
}

pb::SysvPerm PermOf(int id, const struct ipc_perm& p) {
  pb::SysvPerm out;
  out.set_id(id);
  out.set_key(p.__key);
  out.set_mode(p.mode & 0777);
  out.set_uid(p.uid);
  out.set_gid(p.gid);
  return out;
}

// Every sysv VMA of `proc` belongs to an attach that begins at offset 0 of
// its segment and covers the whole of it.
Status CheckWholeAttaches(const pb::ProcessImage& proc, const std::map<int, uint64_t>& sizes) {
  int id = -1;
  uint64_t next = 0, covered = 0;
  auto close_group = [&]() -> Status {
    if (id < 0) return Status::Ok();
    auto size = sizes.find(id);
    if (size != sizes.end() && covered < PageUp(size->second)) {
      return Status::Error(StatusCode::kCantMove, "pid " + std::to_string(proc.pid()) + ": System V segment " +
                                                      std::to_string(id) + " is attached in part (not supported)");
    }
    id = -1;
    return Status::Ok();
  };
  for (const pb::Vma& v : proc.vmas()) {
    if (v.kind() != pb::VMA_SYSV_SHM) {
      Status st = close_group();
      if (!st.ok()) return st;
      continue;
    }
    if (id == v.sysv_shmid() && v.start() == next && v.pgoff() == covered) {
      next = v.end();
      covered += v.end() - v.start();
      continue;
    }
    Status st = close_group();
    if (!st.ok()) return st;
    if (v.pgoff() != 0) {
      return Status::Error(StatusCode::kCantMove, "pid " + std::to_string(proc.pid()) + ": System V segment " +
                                                      std::to_string(v.sysv_shmid()) +
                                                      " is attached in part (not supported)");
    }
    id = v.sysv_shmid();
    next = v.end();
    covered = v.end() - v.start();
  }
  return close_group();
}

// The queue or set a process (or thread) was waiting on when frozen: its
// registers at an interrupted msgsnd, msgrcv, semop or semtimedop.
void WaitingOn(const std::string& gpregs, std::set<int>* queues, std::set<int>* sets) {
  user_regs_struct regs;
  if (gpregs.size() != sizeof(regs)) return;
  memcpy(&regs, gpregs.data(), sizeof(regs));
  const long nr = static_cast<long>(regs.orig_rax);
  if (nr == SYS_msgsnd || nr == SYS_msgrcv) queues->insert(static_cast<int>(regs.rdi));
  if (nr == SYS_semop || nr == SYS_semtimedop) sets->insert(static_cast<int>(regs.rdi));
}

Status RecordShm(const std::vector<long long>& row, FileTableBuilder& files) {
  const int id = static_cast<int>(row[1]);
  struct shmid_ds ds {};
  if (shmctl(id, IPC_STAT, &ds) != 0) return Status::Errno("shmctl IPC_STAT " + std::to_string(id));
  pb::SysvShm* shm = files.table().add_sysv_shm();
  *shm->mutable_perm() = PermOf(id, ds.shm_perm);
  shm->set_size(ds.shm_segsz);
  shm->set_removed((ds.shm_perm.mode & SHM_DEST) != 0);
  shm->set_pages_file("sysvshm-" + std::to_string(id) + ".img");
  // Read through the segment's shmem file (holes stay holes), reached by
  // an attach of our own.
  void* p = shmat(id, nullptr, SHM_RDONLY);
  if (p == reinterpret_cast<void*>(-1)) return Status::Errno("shmat System V segment " + std::to_string(id));
  const uint64_t at = reinterpret_cast<uint64_t>(p);
  const std::string path = fmt::format("/proc/self/map_files/{:x}-{:x}", at, at + PageUp(ds.shm_segsz));
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  Status st = fd < 0 ? Status::Errno("open " + path) : Status::Ok();
  MemoryStats stats;
  if (st.ok()) st = DumpShmemPages(fd, "System V segment " + std::to_string(id), ds.shm_segsz, shm->pages_file(), files,
                                   shm->mutable_pages(), &stats);
  if (fd >= 0) close(fd);
  shmdt(p);
  return st;
}

Status RecordSem(int id, const std::vector<int>& values, FileTableBuilder& files) {
  struct semid_ds ds {};
  SemArg arg;
  arg.buf = &ds;
  if (semctl(id, 0, IPC_STAT, arg) != 0) return Status::Errno("semctl IPC_STAT " + std::to_string(id));
  pb::SysvSem* sem = files.table().add_sysv_sem();
  *sem->mutable_perm() = PermOf(id, ds.sem_perm);
  for (int v : values) sem->add_values(v);
  return Status::Ok();
}

Status RecordMsg(int id, FileTableBuilder& files) {
  struct msqid_ds ds {};
  if (msgctl(id, IPC_STAT, &ds) != 0) return Status::Errno("msgctl IPC_STAT " + std::to_string(id));
  pb::SysvMsg* msg = files.table().add_sysv_msg();
  *msg->mutable_perm() = PermOf(id, ds.msg_perm);
  msg->set_qbytes(ds.msg_qbytes);
  // MSG_COPY reads the Nth message and leaves it queued.
  const size_t max = std::max<size_t>({ds.msg_qbytes, ds.msg_cbytes, 65536});
  std::vector<char> buf(sizeof(long) + max);
  for (msgqnum_t i = 0; i < ds.msg_qnum; ++i) {
    ssize_t n = msgrcv(id, buf.data(), max, static_cast<long>(i), IPC_NOWAIT | MSG_COPY | MSG_NOERROR);
    if (n < 0) return Status::Errno("read message " + std::to_string(i) + " of System V queue " + std::to_string(id));
    pb::SysvMessage* m = msg->add_messages();
    long type;
    memcpy(&type, buf.data(), sizeof(type));
    m->set_type(type);
    m->set_text(std::string(buf.data() + sizeof(long), static_cast<size_t>(n)));
  }
  return Status::Ok();
}

// Makes the next object of kind `what` ("shm", "sem", "msg") get `id`.
Status ChooseId(const char* what, int id) {
  const std::string path = std::string("/proc/sys/kernel/") + what + "_next_id";
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  std::string text = std::to_string(id);
  bool ok = fd >= 0 && write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  int err = errno;
  if (fd >= 0) close(fd);
  if (!ok) return Status::Errno("give a System V object its id " + std::to_string(id) + " (write " + path + ")", err);
  return Status::Ok();
}

void ForgetChosenId(const char* what) {
  int fd = open((std::string("/proc/sys/kernel/") + what + "_next_id").c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  (void)!write(fd, "-1", 2);
  close(fd);
}

// get(key, ...) with the recorded id, or why not.
template <typename Get>
Result<int> CreateWithId(const char* what, const pb::SysvPerm& perm, Get get) {
  Status st = ChooseId(what, perm.id());
  if (!st.ok()) return st;
  int got = get();
  int err = errno;
  ForgetChosenId(what);
  if (got < 0) {
    return Status::Errno(fmt::format("make System V {} {} (key {})", what, perm.id(), KeyText(perm.key())), err);
  }
  if (got != perm.id()) {
    return Status::Error(StatusCode::kBusy, fmt::format("System V {} id {} is not free here (got {})", what, perm.id(), got));
  }
  return got;
}

// IPC_SET: `perm`'s owner, and `mode`.
Status SetOwner(int kind, int id, const pb::SysvPerm& perm, uint32_t mode) {
  auto set = [&](struct ipc_perm* p) {
    p->uid = perm.uid();
    p->gid = perm.gid();
    p->mode = static_cast<unsigned short>(mode);
  };
  int r = -1;
  if (kind == 0) {
    struct shmid_ds ds {};
    if (shmctl(id, IPC_STAT, &ds) == 0) set(&ds.shm_perm), r = shmctl(id, IPC_SET, &ds);
  } else if (kind == 1) {
    struct semid_ds ds {};
    SemArg arg;
    arg.buf = &ds;
    if (semctl(id, 0, IPC_STAT, arg) == 0) set(&ds.sem_perm), r = semctl(id, 0, IPC_SET, arg);
  } else {
    struct msqid_ds ds {};
    if (msgctl(id, IPC_STAT, &ds) == 0) set(&ds.msg_perm), r = msgctl(id, IPC_SET, &ds);
  }
  if (r != 0) return Status::Errno(fmt::format("set the owner of System V object {}", id));
  return Status::Ok();
}

}  // namespace

// ---- dump -------------------------------------------------------------------------

InIpcNamespace::~InIpcNamespace() {
  if (own_ < 0) return;
  (void)setns(own_, CLONE_NEWIPC);
  close(own_);
}

Status InIpcNamespace::Enter(int ns_fd) {
  struct stat want {}, have {};
  if (fstat(ns_fd, &want) != 0) return Status::Errno("fstat an IPC namespace");
  if (stat("/proc/thread-self/ns/ipc", &have) == 0 && have.st_ino == want.st_ino && have.st_dev == want.st_dev) {
    return Status::Ok();
  }
  own_ = open("/proc/thread-self/ns/ipc", O_RDONLY | O_CLOEXEC);
  if (own_ < 0) return Status::Errno("open /proc/thread-self/ns/ipc");
  if (setns(ns_fd, CLONE_NEWIPC) != 0) {
    int err = errno;
    close(own_);
    own_ = -1;
    return Status::Errno("enter the tree's IPC namespace", err);
  }
  return Status::Ok();
}

Status SysvDump::Begin() {
  values_.clear();
  for (const auto& row : Rows("sem")) {
    Result<std::vector<int>> v = SemValues(static_cast<int>(row[1]));
    if (v.ok()) values_[static_cast<int>(row[1])] = *v;
  }
  before_ = values_;
  return Status::Ok();
}

Status SysvDump::Drain(Tracee& t, const std::vector<std::unique_ptr<Tracee>>& threads, std::vector<pb::SemUndo>* out) {
  if (values_.empty()) return Status::Ok();  // no set in this namespace: nothing to hold
  // The list is shared by the threads: the last to let go applies it.
  for (const auto& th : threads) {
    Status st = th->SyscallOk("unshare CLONE_SYSVSEM", SYS_unshare, CLONE_SYSVSEM).status();
    if (!st.ok()) return st;
  }
  Status st = t.SyscallOk("unshare CLONE_SYSVSEM", SYS_unshare, CLONE_SYSVSEM).status();
  if (!st.ok()) return st;
  for (auto& [id, values] : values_) {
    Result<std::vector<int>> now = SemValues(id);
    if (!now.ok() || now->size() != values.size()) continue;  // removed meanwhile: no adjustment to keep
    for (size_t i = 0; i < values.size(); ++i) {
      if ((*now)[i] == values[i]) continue;
      pb::SemUndo u;
      u.set_semid(id);
      u.set_num(static_cast<uint32_t>(i));
      u.set_adj((*now)[i] - values[i]);
      out->push_back(u);
      adjusted_.insert(id);
    }
    values = *now;
  }
  return Status::Ok();
}

Status SysvDump::Record(const std::set<pid_t>& pids, const std::vector<const pb::ProcessImage*>& procs,
                        FileTableBuilder& files) {
  auto ours = [&](long long pid) { return pid > 0 && pids.count(static_cast<pid_t>(pid)) > 0; };
  // Segments: attached by the tree (as many VMAs as it has: nattch counts
  // VMAs), or made or last attached by it.
  std::map<int, int> vmas;
  std::set<int> queues, sets;  // waited on
  for (const pb::ProcessImage* p : procs) {
    for (const pb::Vma& v : p->vmas()) {
      if (v.kind() == pb::VMA_SYSV_SHM) vmas[v.sysv_shmid()]++;
    }
    WaitingOn(p->gpregs(), &queues, &sets);
    for (const pb::ThreadImage& t : p->threads()) WaitingOn(t.gpregs(), &queues, &sets);
  }
  std::map<int, uint64_t> sizes;
  std::vector<std::vector<long long>> shm_rows;
  for (const auto& row : Rows("shm")) {
    if (row.size() < 7) continue;
    const int id = static_cast<int>(row[1]);
    sizes[id] = static_cast<uint64_t>(row[3]);
    if (!vmas.count(id) && !ours(row[4]) && !ours(row[5])) continue;
    if (row[6] > vmas[id]) {
      return Status::Error(StatusCode::kCantMove, "System V segment " + std::to_string(id) + " (key " +
                                                      KeyText(static_cast<int>(row[0])) +
                                                      ") is attached by a process outside the tree");
    }
    shm_rows.push_back(row);
  }
  for (const auto& [id, n] : vmas) {
    if (!sizes.count(id)) return Status::Error("System V segment " + std::to_string(id) + " is mapped but not listed");
  }
  for (const pb::ProcessImage* p : procs) {
    Status st = CheckWholeAttaches(*p, sizes);
    if (!st.ok()) return st;
  }
  for (const auto& row : shm_rows) {
    Status st = RecordShm(row, files);
    if (!st.ok()) return st;
  }
  // Semaphore sets: one of the tree's processes last changed a value, or
  // holds an adjustment.
  for (const auto& row : Rows("sem")) {
    const int id = static_cast<int>(row[1]);
    bool used = adjusted_.count(id) > 0 || sets.count(id) > 0;
    for (long long i = 0; !used && i < row[3]; ++i) used = ours(semctl(id, static_cast<int>(i), GETPID));
    if (!used) continue;
    auto before = before_.find(id);
    Result<std::vector<int>> values = before != before_.end() ? Result<std::vector<int>>(before->second) : SemValues(id);
    if (!values.ok()) return values.status();
    Status st = RecordSem(id, *values, files);
    if (!st.ok()) return st;
  }
  // Message queues: one of the tree's processes last sent or received.
  for (const auto& row : Rows("msg")) {
    if (row.size() < 7 || (!ours(row[5]) && !ours(row[6]) && !queues.count(static_cast<int>(row[1])))) continue;
    Status st = RecordMsg(static_cast<int>(row[1]), files);
    if (!st.ok()) return st;
  }
  return Status::Ok();
}

Status GiveSemUndo(Tracee& t, uint64_t scratch, size_t scratch_size, const std::vector<pb::SemUndo>& undo,
                   const std::map<int, int>& ids) {
  std::map<int, std::vector<struct sembuf>> ops;
  for (const pb::SemUndo& u : undo) {
    struct sembuf op {};
    op.sem_num = static_cast<unsigned short>(u.num());
    op.sem_op = static_cast<short>(-u.adj());
    op.sem_flg = SEM_UNDO | IPC_NOWAIT;
    ops[u.semid()].push_back(op);
  }
  Status first;
  for (const auto& [image_id, list] : ops) {
    auto mapped = ids.find(image_id);
    const int id = mapped == ids.end() ? image_id : mapped->second;
    const size_t bytes = list.size() * sizeof(struct sembuf);
    Status st = bytes > scratch_size ? Status::Error("too many adjustments") : t.WriteMemory(scratch, list.data(), bytes);
    if (st.ok()) {
      st = t.SyscallOk("semop", SYS_semop, static_cast<uint64_t>(id), scratch, list.size()).status();
    }
    if (!st.ok() && first.ok()) {
      first = Status::Error(StatusCode::kBusy, "pid " + std::to_string(t.pid()) +
                                                   ": its adjustments of System V semaphore set " + std::to_string(id) +
                                                   " cannot be given back now: " + st.message());
    }
  }
  return first;
}

void RemoveSysvObjects(const pb::FileTable& table) {
  for (const pb::SysvShm& s : table.sysv_shm()) {
    struct shmid_ds ds {};
    if (!s.removed() && shmctl(s.perm().id(), IPC_STAT, &ds) == 0 && ds.shm_perm.__key == s.perm().key()) {
      shmctl(s.perm().id(), IPC_RMID, nullptr);
    }
  }
  for (const pb::SysvSem& s : table.sysv_sem()) {
    struct semid_ds ds {};
    SemArg arg;
    arg.buf = &ds;
    if (semctl(s.perm().id(), 0, IPC_STAT, arg) == 0 && ds.sem_perm.__key == s.perm().key()) {
      semctl(s.perm().id(), 0, IPC_RMID);
    }
  }
  for (const pb::SysvMsg& m : table.sysv_msg()) {
    struct msqid_ds ds {};
    if (msgctl(m.perm().id(), IPC_STAT, &ds) == 0 && ds.msg_perm.__key == m.perm().key()) {
      msgctl(m.perm().id(), IPC_RMID, nullptr);
    }
  }
}

// ---- restore ----------------------------------------------------------------------

SysvObjects::~SysvObjects() {
  if (finished_) return;
  for (const Made& m : made_) {
    if (m.kind == 0) shmctl(m.id, IPC_RMID, nullptr);
    if (m.kind == 1) semctl(m.id, 0, IPC_RMID);
    if (m.kind == 2) msgctl(m.id, IPC_RMID, nullptr);
  }
}

Status SysvObjects::Make(const pb::FileTable& table, const std::vector<pb::ProcessImage>& procs,
                         const std::string& image_dir) {
  Status st;
  for (const pb::SysvShm& s : table.sysv_shm()) {
    const pb::SysvPerm& perm = s.perm();
    struct shmid_ds ds {};
    if (!s.removed() && shmctl(perm.id(), IPC_STAT, &ds) == 0) {
      if (ds.shm_perm.__key == perm.key() && ds.shm_segsz == s.size() && !(ds.shm_perm.mode & SHM_DEST)) {
        shm_ids_[perm.id()] = perm.id();  // still here: the same segment
        continue;
      }
      return Status::Error(StatusCode::kBusy, fmt::format("System V segment id {} is another segment's here (key {})",
                                                          perm.id(), KeyText(ds.shm_perm.__key)));
    }
    Result<int> id = CreateWithId("shm", perm, [&] { return shmget(perm.key(), s.size(), IPC_CREAT | IPC_EXCL | 0600); });
    // A removed segment is reached by its attaches only (and by its id,
    // which a program rarely keeps): another id will do.
    if (!id.ok() && s.removed()) id = shmget(IPC_PRIVATE, s.size(), IPC_CREAT | 0600);
    if (id.ok() && *id < 0) id = Status::Errno("make a System V segment of " + std::to_string(s.size()) + " bytes");
    if (!id.ok()) return id.status();
    made_.push_back({0, *id, perm});
    shm_ids_[perm.id()] = *id;
    if (s.removed()) to_remove_.push_back(*id);
    void* p = shmat(*id, nullptr, 0);
    if (p == reinterpret_cast<void*>(-1)) return Status::Errno("shmat System V segment " + std::to_string(*id));
    st = ReadShmemPages(image_dir + "/" + s.pages_file(), s.pages(), static_cast<char*>(p), PageUp(s.size()));
    shmdt(p);
    if (!st.ok()) return st;
    st = SetOwner(0, *id, perm, perm.mode());
    if (!st.ok()) return st;
  }
  // A set made again starts with the adjustments its processes will take
  // back (GiveSemUndo): they bring it to the recorded values.
  std::map<int, std::vector<int>> pending;
  for (const pb::ProcessImage& p : procs) {
    for (const pb::SemUndo& u : p.sem_undo()) {
      auto& v = pending[u.semid()];
      if (v.size() <= u.num()) v.resize(u.num() + 1);
      v[u.num()] += u.adj();
    }
  }
  for (const pb::SysvSem& s : table.sysv_sem()) {
    const pb::SysvPerm& perm = s.perm();
    struct semid_ds ds {};
    SemArg arg;
    arg.buf = &ds;
    if (semctl(perm.id(), 0, IPC_STAT, arg) == 0) {
      if (ds.sem_perm.__key == perm.key() && ds.sem_nsems == static_cast<unsigned long>(s.values_size())) {
        sem_ids_[perm.id()] = perm.id();
        continue;
      }
      return Status::Error(StatusCode::kBusy, fmt::format("System V semaphore set id {} is another set's here (key {})",
                                                          perm.id(), KeyText(ds.sem_perm.__key)));
    }
    Result<int> id = CreateWithId("sem", perm, [&] {
      return semget(perm.key(), s.values_size(), IPC_CREAT | IPC_EXCL | 0600);
    });
    if (!id.ok()) return id.status();
    made_.push_back({1, *id, perm});
    sem_ids_[perm.id()] = *id;
    Fill f{1, *id, {}};
    const std::vector<int>& adj = pending[perm.id()];
    for (int i = 0; i < s.values_size(); ++i) {
      int v = s.values(i) + (static_cast<size_t>(i) < adj.size() ? adj[static_cast<size_t>(i)] : 0);
      if (v < 0 || v > 32767) return Status::Error(fmt::format("System V semaphore set {}: value {} out of range", perm.id(), v));
      const unsigned short u = static_cast<unsigned short>(v);
      f.bytes.append(reinterpret_cast<const char*>(&u), sizeof(u));
    }
    fills_.push_back(std::move(f));
    st = SetOwner(1, *id, perm, 0600);
    if (!st.ok()) return st;
  }
  for (const pb::SysvMsg& m : table.sysv_msg()) {
    const pb::SysvPerm& perm = m.perm();
    struct msqid_ds ds {};
    if (msgctl(perm.id(), IPC_STAT, &ds) == 0) {
      if (ds.msg_perm.__key == perm.key()) continue;  // still here: its messages are its own
      return Status::Error(StatusCode::kBusy, fmt::format("System V queue id {} is another queue's here (key {})",
                                                          perm.id(), KeyText(ds.msg_perm.__key)));
    }
    Result<int> id = CreateWithId("msg", perm, [&] { return msgget(perm.key(), IPC_CREAT | IPC_EXCL | 0600); });
    if (!id.ok()) return id.status();
    made_.push_back({2, *id, perm});
    if (msgctl(*id, IPC_STAT, &ds) != 0) return Status::Errno("msgctl IPC_STAT");
    ds.msg_qbytes = m.qbytes();
    if (msgctl(*id, IPC_SET, &ds) != 0) return Status::Errno("set the size of System V queue " + std::to_string(*id));
    for (const pb::SysvMessage& one : m.messages()) {
      Fill f{2, *id, {}};
      long type = one.type();
      f.bytes.append(reinterpret_cast<const char*>(&type), sizeof(type));
      f.bytes.append(one.text());
      fills_.push_back(std::move(f));
    }
    st = SetOwner(2, *id, perm, 0600);
    if (!st.ok()) return st;
  }
  return Status::Ok();
}

Status SysvObjects::FillFrom(Tracee& t, uint64_t scratch, size_t scratch_size) {
  for (const Fill& f : fills_) {
    uint64_t at = scratch;
    bool mapped = false;
    if (f.bytes.size() > scratch_size) {  // a long message: room of its own
      Result<long> r = t.SyscallOk("mmap", SYS_mmap, 0, f.bytes.size(), PROT_READ | PROT_WRITE,
                                   MAP_PRIVATE | MAP_ANONYMOUS, ~0ULL, 0);
      if (!r.ok()) return r.status();
      at = static_cast<uint64_t>(*r);
      mapped = true;
    }
    Status st = t.WriteMemory(at, f.bytes.data(), f.bytes.size());
    if (st.ok() && f.kind == 1) {
      st = t.SyscallOk("semctl SETALL " + std::to_string(f.id), SYS_semctl, static_cast<uint64_t>(f.id), 0, SETALL, at)
               .status();
    }
    if (st.ok() && f.kind == 2) {
      st = t.SyscallOk("msgsnd to System V queue " + std::to_string(f.id), SYS_msgsnd, static_cast<uint64_t>(f.id), at,
                       f.bytes.size() - sizeof(long), IPC_NOWAIT)
               .status();
    }
    if (mapped) (void)t.Syscall(SYS_munmap, at, f.bytes.size());
    if (!st.ok()) return st;
  }
  fills_.clear();
  return Status::Ok();
}

Status SysvObjects::Finish() {
  finished_ = true;
  for (const Made& m : made_) {
    if (m.kind == 0) continue;
    Status st = SetOwner(m.kind, m.id, m.perm, m.perm.mode());
    if (!st.ok()) return st;
  }
  for (int id : to_remove_) {
    if (shmctl(id, IPC_RMID, nullptr) != 0) return Status::Errno("remove System V segment " + std::to_string(id));
  }
  return Status::Ok();
}

int SysvObjects::ShmId(int shmid) const {
  auto it = shm_ids_.find(shmid);
  return it == shm_ids_.end() ? shmid : it->second;
}

}  // namespace roam
