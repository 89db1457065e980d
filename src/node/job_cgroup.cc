#include "node/job_cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <cstddef>
#include <cstring>
#include <initializer_list>
#include <mutex>
#include <vector>

#include "common/cgroup_fs.h"

namespace roam {
namespace {

long Bpf(int cmd, bpf_attr* attr) { return ::syscall(SYS_bpf, cmd, attr, sizeof(*attr)); }

bpf_insn Insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn i{};
  i.code = code;
  i.dst_reg = dst;
  i.src_reg = src;
  i.off = off;
  i.imm = imm;
  return i;
}

int32_t Raw(in_addr a) {
  int32_t v;
  memcpy(&v, &a.s_addr, sizeof v);
  return v;
}

// Loads `prog` for the cgroup hook `type`; the verifier's last line says
// why it refused one.
Result<UniqueFd> LoadProgram(bpf_attach_type type, const bpf_insn* prog, size_t count) {
  static const char kLicense[] = "GPL";
  char log[4096] = "";
  bpf_attr a{};
  a.prog_type = BPF_PROG_TYPE_CGROUP_SOCK_ADDR;
  a.expected_attach_type = type;
  a.insns = reinterpret_cast<uint64_t>(prog);
  a.insn_cnt = static_cast<uint32_t>(count);
  a.license = reinterpret_cast<uint64_t>(kLicense);
  a.log_buf = reinterpret_cast<uint64_t>(log);
  a.log_size = sizeof log;
  a.log_level = 1;
  const int fd = static_cast<int>(Bpf(BPF_PROG_LOAD, &a));
  if (fd < 0) {
    Status st = Status::Errno(type == BPF_CGROUP_INET4_CONNECT ? "load its connect hook (bpf)"
                                                                : "load its sendmsg hook (bpf)");
    std::string why = log;
    while (!why.empty() && why.back() == '\n') why.pop_back();
    if (const size_t nl = why.rfind('\n'); nl != std::string::npos) why = why.substr(nl + 1);
    return why.empty() ? st : st.Prefixed(why + ": ");
  }
  return UniqueFd(fd);
}

enum : uint8_t { R0, R1, R2, R3, R6 = 6, R10 = 10 };

// A jump "to allow": its offset is set by Hook() once the program's length
// is known.
constexpr int16_t kToAllow = INT16_MIN;

bpf_insn JumpIfNot(uint8_t reg, int32_t value) { return Insn(BPF_JMP32 | BPF_JNE | BPF_K, reg, 0, kToAllow, value); }

// A hook's program: a common head, `body`, and the end every path reaches
// ("allow": return 1, let the call go on). The head goes on to the body
// only for a destination in the subnet (`net`/`mask`) and a socket with no
// source address yet (one a program bound itself, with or without a port,
// is left alone), with the context in r6. The address and the subnet are
// compared as the bytes they are on the wire, loaded as one 32-bit word on
// both sides, so no byte order is swapped.
std::vector<bpf_insn> Hook(in_addr net, in_addr mask, std::initializer_list<bpf_insn> body) {
  std::vector<bpf_insn> prog = {
      Insn(BPF_ALU64 | BPF_MOV | BPF_X, R6, R1, 0, 0),  // r6 = ctx
      Insn(BPF_LDX | BPF_MEM | BPF_W, R2, R6, offsetof(bpf_sock_addr, user_ip4), 0),
      Insn(BPF_ALU | BPF_AND | BPF_K, R2, 0, 0, Raw(mask)),
      JumpIfNot(R2, Raw(net)),
      Insn(BPF_LDX | BPF_MEM | BPF_DW, R3, R6, offsetof(bpf_sock_addr, sk), 0),
      Insn(BPF_LDX | BPF_MEM | BPF_W, R3, R3, offsetof(bpf_sock, src_ip4), 0),
      JumpIfNot(R3, 0),
  };
  prog.insert(prog.end(), body);
  const int allow = static_cast<int>(prog.size());
  prog.push_back(Insn(BPF_ALU64 | BPF_MOV | BPF_K, R0, 0, 0, 1));
  prog.push_back(Insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
  for (int i = 0; i < allow; ++i) {
    if (prog[i].off == kToAllow) prog[i].off = static_cast<int16_t>(allow - i - 1);
  }
  return prog;
}

// The connect hook: bind(ctx, {AF_INET, port 0, address}). (A second bind
// without a port would replace the address a program chose with
// IP_BIND_ADDRESS_NO_PORT: hence the head's look at the source first.)
Result<UniqueFd> LoadConnectHook(in_addr address, in_addr net, in_addr mask) {
  const std::vector<bpf_insn> prog = Hook(net, mask, {
      Insn(BPF_ST | BPF_MEM | BPF_W, R10, 0, -16, AF_INET),  // sin_family, sin_port 0
      Insn(BPF_ST | BPF_MEM | BPF_W, R10, 0, -12, Raw(address)),
      Insn(BPF_ST | BPF_MEM | BPF_DW, R10, 0, -8, 0),  // sin_zero
      Insn(BPF_ALU64 | BPF_MOV | BPF_X, R1, R6, 0, 0),
      Insn(BPF_ALU64 | BPF_MOV | BPF_X, R2, R10, 0, 0),
      Insn(BPF_ALU64 | BPF_ADD | BPF_K, R2, 0, 0, -16),
      Insn(BPF_ALU64 | BPF_MOV | BPF_K, R3, 0, 0, 16),
      Insn(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_bind),
  });
  return LoadProgram(BPF_CGROUP_INET4_CONNECT, prog.data(), prog.size());
}

// The UDP sendmsg hook, for a datagram sent with an address (sendto) from
// a socket not connected: unless the program chose its source itself
// (IP_PKTINFO), it is the job's address, so that the replies find the job
// wherever it has gone since.
Result<UniqueFd> LoadSendmsgHook(in_addr address, in_addr net, in_addr mask) {
  const std::vector<bpf_insn> prog = Hook(net, mask, {
      Insn(BPF_LDX | BPF_MEM | BPF_W, R2, R6, offsetof(bpf_sock_addr, msg_src_ip4), 0),
      JumpIfNot(R2, 0),
      Insn(BPF_ALU | BPF_MOV | BPF_K, R2, 0, 0, Raw(address)),
      Insn(BPF_STX | BPF_MEM | BPF_W, R6, R2, offsetof(bpf_sock_addr, msg_src_ip4), 0),
  });
  return LoadProgram(BPF_CGROUP_UDP4_SENDMSG, prog.data(), prog.size());
}

const bpf_attach_type kHooks[] = {BPF_CGROUP_INET4_CONNECT, BPF_CGROUP_UDP4_SENDMSG};

void Detach(int cg, bpf_attach_type type, int prog) {
  bpf_attr d{};
  d.target_fd = static_cast<uint32_t>(cg);
  d.attach_bpf_fd = static_cast<uint32_t>(prog);
  d.attach_type = type;
  (void)Bpf(BPF_PROG_DETACH, &d);
}

// Detaches every hook of ours on the cgroup at `cg`: ones a killed roamd
// left, or the ones this job had when it was here before.
void DetachAll(int cg) {
  for (bpf_attach_type type : kHooks) {
    uint32_t ids[64];
    bpf_attr q{};
    q.query.target_fd = static_cast<uint32_t>(cg);
    q.query.attach_type = type;
    q.query.prog_ids = reinterpret_cast<uint64_t>(ids);
    q.query.prog_cnt = 64;
    if (Bpf(BPF_PROG_QUERY, &q) != 0) continue;
    for (uint32_t i = 0; i < q.query.prog_cnt && i < 64; ++i) {
      bpf_attr g{};
      g.prog_id = ids[i];
      UniqueFd prog(static_cast<int>(Bpf(BPF_PROG_GET_FD_BY_ID, &g)));
      if (prog.ok()) Detach(cg, type, prog.get());
    }
  }
}

// Where the cgroup v2 hierarchy is mounted here (/sys/fs/cgroup, or
// /sys/fs/cgroup/unified on a hybrid boot); mounted by us under /run if
// nowhere. Found once.
Result<CgroupMount> Cgroup2() {
  static std::mutex mu;
  static CgroupMount found;
  std::lock_guard<std::mutex> lock(mu);
  if (!found.point.empty()) return found;
  CgroupMount m;
  if (!FindCgroupMount("", &m)) {
    m = {"/", "/run/roam-cgroup2"};
    ::mkdir(m.point.c_str(), 0755);
    if (::mount("cgroup2", m.point.c_str(), "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0 &&
        errno != EBUSY) {
      return Status::Errno("no cgroup2 hierarchy here, and mount one on " + m.point);
    }
  }
  found = m;
  return found;
}

// The cgroup (v2) `pid` (0: this process) is in, as a directory; the
// hierarchy's top when it cannot be told.
std::string CgroupDirOf(const CgroupMount& m, pid_t pid) {
  std::string dir;
  struct stat st;
  if (ProcessCgroupDir(pid == 0 ? "self" : std::to_string(pid), "", m, &dir) && dir.find("/..") == std::string::npos &&
      ::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return dir;
  }
  return m.point;
}

std::string CgroupName(const std::string& node, const std::string& gpid) {
  std::string name = "roam-job-" + node + "-" + gpid;
  for (char& c : name) {
    if (c == ':' || c == '/' || c == '\n') c = '-';
  }
  return name;
}

std::string Basename(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

Result<JobCgroup> JobCgroup::Make(const std::string& node, const std::string& gpid, in_addr address, in_addr net,
                                  in_addr mask, pid_t beside) {
  Result<CgroupMount> m = Cgroup2();
  if (!m.ok()) return m.status();
  const std::string name = CgroupName(node, gpid);
  const std::string where = CgroupDirOf(*m, beside);
  JobCgroup cg;
  cg.dir_ = Basename(where) == name ? where : where + "/" + name;
  if (::mkdir(cg.dir_.c_str(), 0755) != 0 && errno != EEXIST) return Status::Errno("mkdir " + cg.dir_);
  cg.dir_fd_.reset(::open(cg.dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cg.dir_fd_.ok()) return Status::Errno("open " + cg.dir_);
  DetachAll(cg.dir_fd_.get());
  Result<UniqueFd> progs[] = {LoadConnectHook(address, net, mask), LoadSendmsgHook(address, net, mask)};
  for (size_t i = 0; i < 2; ++i) {
    if (!progs[i].ok()) return progs[i].status();
    bpf_attr a{};
    a.target_fd = static_cast<uint32_t>(cg.dir_fd_.get());
    a.attach_bpf_fd = static_cast<uint32_t>(progs[i]->get());
    a.attach_type = kHooks[i];
    a.attach_flags = BPF_F_ALLOW_MULTI;  // beside whatever else an admin put above
    if (Bpf(BPF_PROG_ATTACH, &a) != 0) return Status::Errno("attach its hooks to " + cg.dir_);
    cg.prog_fd_[i] = std::move(*progs[i]);
  }
  return cg;
}

JobCgroup& JobCgroup::operator=(JobCgroup&& o) noexcept {
  if (this != &o) {
    (void)Close();
    dir_ = std::move(o.dir_);
    dir_fd_ = std::move(o.dir_fd_);
    prog_fd_[0] = std::move(o.prog_fd_[0]);
    prog_fd_[1] = std::move(o.prog_fd_[1]);
  }
  return *this;
}

bool JobCgroup::Close() {
  if (!dir_fd_.ok()) return true;
  for (size_t i = 0; i < 2; ++i) {
    if (prog_fd_[i].ok()) Detach(dir_fd_.get(), kHooks[i], prog_fd_[i].get());
    prog_fd_[i].reset();
  }
  dir_fd_.reset();
  return RemoveEmptyCgroup(dir_);
}

Status EnterCgroup(const std::string& dir, const std::vector<pid_t>& pids) {
  if (dir.empty()) return Status::Ok();
  for (pid_t pid : pids) {
    Status st = MoveToCgroup(dir, pid);
    if (!st.ok() && !(::kill(pid, 0) != 0 && errno == ESRCH)) return st;  // one gone meanwhile is no error
  }
  return Status::Ok();
}

bool RemoveEmptyCgroup(const std::string& dir) {
  if (dir.empty()) return true;
  return ::rmdir(dir.c_str()) == 0 || errno == ENOENT;
}

std::vector<std::string> RemoveStaleJobCgroups(const std::string& node) {
  std::vector<std::string> out;
  Result<CgroupMount> m = Cgroup2();
  if (!m.ok()) return out;
  const std::string dir = CgroupDirOf(*m, 0);
  const std::string prefix = CgroupName(node, "");
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (e->d_type == DT_DIR && name.rfind(prefix, 0) == 0 && RemoveEmptyCgroup(dir + "/" + name)) {
      out.push_back(dir + "/" + name);
    }
  }
  ::closedir(d);
  return out;
}

}  // namespace roam
