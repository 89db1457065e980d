// Open files of a process tree: the dump side collects every open file
// description once (two fds, in one process or in two, that share a
// description — dup, fork — share one FileDesc, found with kcmp), the
// restore side opens each description once and hands out its fd.
//
// One file per kind holds both sides (file_regular.cc, file_pipe.cc,
// file_anon.cc for eventfd/timerfd/signalfd, file_epoll.cc,
// file_inotify.cc, file_pidfd.cc ...); this file dispatches between them.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "ckpt/image_sink.h"
#include "common/proc_fdinfo.h"
#include "common/proc_stat.h"
#include "common/status.h"
#include "common/unique_fd.h"
#include "image.pb.h"

namespace roam {

// What the dump knows about one fd when it meets it.
struct FdSource {
  pid_t pid = 0;
  int fd = -1;
  std::string link;      // readlink of /proc/PID/fd/N: what the fd is
  std::string proc_path; // /proc/PID/fd/N or /proc/PID/map_files/A-B: opens it
  struct stat st = {};   // stat of /proc/PID/fd/N (the file itself)
  FdInfo info;
};

// What sock_diag says of a UNIX socket (file_unix.cc).
struct UnixDiag {
  uint64_t peer = 0;  // the other end's inode, 0 if none
  int type = 0;       // SOCK_STREAM ...
  uint32_t shutdown = 0;
  bool named = false;
  std::string name;   // sun_path as bound: a path, or an abstract name (a zero byte first)
  bool listening = false;
  bool connected = false;
  uint32_t rqueue = 0, wqueue = 0;  // a listener: connections waiting, backlog
  std::vector<uint64_t> pending;    // a listener: its waiting connections' clients (their ino, 0 if closed), in order
};

// An established TCP connection a dump holds in repair mode, locked.
struct RepairedSocket {
  pid_t pid = 0;
  int fd = -1;
  pb::InetSocket socket;
};

class FileTableBuilder {
 public:
  // `sink`: where deleted files' contents and shared memory are written.
  // It must outlive the builder.
  explicit FileTableBuilder(ImageSink* sink) : sink_(sink) {}
  // Fds 0-2 of `pid` (the root) stay where the process was: whatever they
  // are (a terminal, a file, /dev/null), they become FILE_INHERITED and the
  // restorer gives its own (pipes are decided by Finish(), as always).
  void set_stdio_stays(pid_t pid) { stdio_stays_ = pid; }
  // The tree's root: its fds 0-2 that are inherited get one FileDesc per
  // fd number even when they share a description.
  void set_root(pid_t pid) { root_ = pid; }
  // Every process of the tree, before the first AddFd (a pty slave is the
  // pair's when any of them holds its master).
  void set_tree(std::set<pid_t> pids) { tree_ = std::move(pids); }

  // The id of the description behind `fd` of `pid` (whose parsed
  // /proc/PID/fdinfo/FD is `info`), added if new. An unsupported kind is an
  // error naming pid, fd and kind.
  Result<uint32_t> AddFd(pid_t pid, int fd, const FdInfo& info);
  // The file mapped by `pid` at [start, end), opened read-only (or
  // read-write for a writable shared mapping) when restored.
  Result<uint32_t> AddMappedFile(pid_t pid, uint64_t start, uint64_t end, bool writable);
  // `pid`'s working directory if it was removed: a deleted directory, made
  // again empty (and removed again) when restored; 0 if it was not removed.
  Result<uint32_t> AddRemovedCwd(pid_t pid);

  // After every process has been seen: a pipe with one end outside the
  // tree becomes FILE_INHERITED when it sits at one of fds 0-2 (and perhaps
  // at others too: a copy of stdout), otherwise it is refused; epoll
  // targets are resolved; buffered pipe data is read.
  // REQUIRES: the tree is still frozen.
  Status Finish();

  // The job's terminals: a terminal met at fd 0-2 (inherited), by device,
  // with that fd number and its FileDesc id (file_terminal.cc).
  void NoteTerminal(const struct stat& st, int fd, uint32_t id);
  const std::map<dev_t, std::pair<int, uint32_t>>& terminals() const { return terminals_; }
  // The FileDesc id of the job's terminal that is device `rdev`, or 0.
  uint32_t JobTerminal(dev_t rdev) const;
  // The FileDesc id of the job's terminal at the lowest fd, or 0.
  uint32_t FirstJobTerminal() const;
  // Whether `pid` is a process of the tree (set_tree; before it, one met).
  bool InTree(pid_t pid) const { return tree_.empty() ? pids_.count(pid) > 0 : tree_.count(pid) > 0; }
  // Whether a process of the tree holds the master of pty pair `index`
  // (file_pty.cc): its slave is then the pair's, not a terminal of the job.
  bool PtyMasterInTree(uint32_t index);
  // A FileDesc id of the slave of the tree's pty pair that is device
  // `rdev`, or 0.
  uint32_t PtySlave(dev_t rdev) const;

  pb::FileTable& table() { return table_; }
  ImageSink* sink() const { return sink_; }
  // Every payload file written on the way (deleted files' contents, shared
  // memory), for the inventory's checksum list.
  std::vector<pb::ImageFileSum> sums;
  // A deleted file is saved once, however many fds and mappings hold it.
  std::map<std::pair<dev_t, ino_t>, std::string> deleted_contents;
  // Connections held for the dump (file_inet.cc): let go on release.
  std::vector<RepairedSocket> repaired;
  // Fds in flight in the queue of UNIX socket `socket_id` (file_unix.cc),
  // peeked into this process: added to the table by AddFd once the
  // socket's own description is, as descriptions of this process's fds.
  struct InFlight {
    uint32_t socket_id = 0;
    int chunk = 0;
    std::vector<UniqueFd> fds;
  };
  std::vector<InFlight> in_flight;

 private:
  struct Seen {
    pid_t pid;
    int fd;
    dev_t dev;
    ino_t ino;
    uint32_t id;
  };
  // One open file description met so far: an fd of it, and its FileDescs
  // in the order made (several for inherited fds 0-2, see AddFd).
  struct Description {
    pid_t pid;
    int fd;
    std::vector<uint32_t> ids;
  };
  // The index of the description of `pid`'s `fd` in `list` (sorted in
  // kcmp's order), or where it would go, with *found false. One kcmp per
  // halving, not one per fd met: 5000 fds of one file took 13 s so.
  static size_t FindDescription(const std::vector<Description>& list, pid_t pid, int fd, bool* found);

  ImageSink* sink_;
  pid_t stdio_stays_ = 0;
  pid_t root_ = 0;
  pb::FileTable table_;
  std::vector<Seen> seen_;
  std::map<std::pair<dev_t, ino_t>, std::vector<Description>> descriptions_;  // by file, sorted
  std::map<std::pair<dev_t, ino_t>, uint32_t> mapped_;  // (dev, ino) -> id, for mappings
  std::set<pid_t> pids_;                                // every process of the tree met (AddFd, AddMappedFile)
  std::map<uint32_t, std::vector<std::pair<pid_t, int>>> users_;  // id -> (pid, fd)
  std::map<dev_t, std::pair<int, uint32_t>> terminals_;
  std::optional<std::map<uint64_t, UnixDiag>> unix_diag_;  // read at the first socket
  // The in-flight fds added: open while the builder lives (Finish reads
  // pipes through them).
  std::vector<UniqueFd> in_flight_held_;

  // Adds the fds in flight found in `id`'s queue (in_flight) to the table.
  Status AddInFlight(uint32_t id);
  // Finish's part for pty pairs (file_pty.cc): both ends inside, no slave
  // held outside; each pair's PtyPair record, unread bytes included.
  Status FinishPtys();

  std::set<pid_t> tree_;
  std::optional<std::set<uint32_t>> pty_masters_;  // PtyMasterInTree's, read at the first slave
};

// ---- restore side ---------------------------------------------------------------

// The descriptions of an image, opened in the restoring seed process.
// REQUIRES: called in the root seed before it creates its children, so that
// every process of the tree inherits every description.
class OpenedFiles {
 public:
  // Decides where each description will sit: FileDesc id k at base + k - 1,
  // then the shared memory objects. Pure, so that the restorer knows the
  // seeds' fd numbers without asking them.
  void Plan(const pb::FileTable& table, int base);
  // Where an inherited description (an fd that led outside the tree at dump
  // time, e.g. stdio) comes from: image fd number -> an fd of the restorer.
  // Numbers not in the map come from the restorer's fd of the same number.
  void set_inherited(std::map<int, int> from) { inherited_ = std::move(from); }
  // Opens every description at its planned fd. REQUIRES: Plan.
  Status OpenAll(const pb::FileTable& table, const std::string& image_dir);
  // The fd holding description `id`, or -1.
  int FdOf(uint32_t id) const;
  // The fd holding shared memory object `id`, or -1.
  int ShmemFd(uint64_t id) const;
  // The first fd after the planned ones.
  int next_free() const { return next_; }

 private:
  std::map<uint32_t, int> fds_;
  std::map<uint64_t, int> shmem_;
  std::map<int, int> inherited_;
  int next_ = 0;
};

// Adds the epoll registrations of the epoll files this process owns: the
// fds are already at their numbers. REQUIRES: in the seed, after its fds
// are in place.
Status RegisterEpollTargets(const pb::FileTable& table, const pb::ProcessImage& proc, const OpenedFiles& opened);

// "pid P fd F", as errors name an fd.
std::string FdName(pid_t pid, int fd);

// Kinds, used by files.cc (dump) and OpenedFiles (restore).
Status DumpRegular(FileTableBuilder& b, const FdSource& src, pb::FileDesc* desc);
Status DumpPipe(const FdSource& src, pb::FileDesc* desc);
// A terminal (IsTerminal): at fd 0-2 inherited, elsewhere the job's own
// reopened, any other refused. `tty_nr`: the process's controlling
// terminal (/proc/PID/stat), which /dev/tty names.
Status DumpTerminal(FileTableBuilder& b, const FdSource& src, int tty_nr, pb::FileDesc* desc);
bool IsTerminal(const struct stat& st);
// The device number of /proc/PID/stat's tty_nr field.
dev_t TtyNrToDev(int tty_nr);
// A session leader (`ps` its stat) whose controlling terminal is the job's
// gets ctty_file and tpgid; one controlled by any other terminal is refused.
Status ResolveControllingTerminal(const FileTableBuilder& b, const ProcStat& ps, pb::ProcessImage* p);
Status DumpAnon(const FdSource& src, pb::FileDesc* desc);  // eventfd, timerfd, signalfd
Status DumpEpoll(const FdSource& src, pb::FileDesc* desc);
Status DumpInotify(const FdSource& src, pb::FileDesc* desc);
// A pidfd (file_pidfd.cc) of a process of the tree or one of its zombies,
// or of a process reaped; any other (a thread, a process outside) is
// refused.
Status DumpPidfd(const FileTableBuilder& b, const FdSource& src, pb::FileDesc* desc);
// Saves the bytes buffered in the pipe behind `fd` of `pid` (a read end;
// for a FIFO, any end).
Status DumpPipeData(pid_t pid, int fd, bool fifo, pb::Pipe* pipe);

// Refuses (kCantMove) a POSIX shared memory object the tree carries
// (IsPosixSharedMemory, image.h) that a process outside `tree` holds open
// or mapped, naming that process: a move would leave it one object and
// give the tree another. Reads /proc/*/fd and /proc/*/maps, only when the
// table has such an object.
Status CheckCarriedNotShared(const pb::FileTable& table, const std::set<pid_t>& tree);

// Writes a carried file's contents back at its path (a JVM's directory
// made too, owned as the file, if missing). The directory must be the
// file's owner's alone, or root's and sticky (/dev/shm, /tmp); a file
// already there is replaced only if it is a regular file of the same owner
// (left by the process itself when `roam checkpoint` killed it), anything
// else is left alone and refused.
Status PlaceCarried(const pb::FileDesc& desc, const std::string& image_dir);

// Opens a regular file, directory or device. A deleted file is opened at
// `recreated`, the path RecreateDeleted put its contents at.
Result<int> OpenRegular(const pb::FileDesc& desc, const std::string& recreated = "");
// Writes a deleted file's contents back under its old name (or beside it,
// if that name is taken now); the caller unlinks it once all are open. A
// deleted FIFO or directory is made again empty (FIFO bytes are the Pipe
// record's), to be removed the same way.
// Descriptions of one deleted file share the key of what is made again.
std::string DeletedKey(const pb::FileDesc& desc);
Result<std::string> RecreateDeleted(const pb::FileDesc& desc, const std::string& image_dir);
Result<int> OpenAnon(const pb::FileDesc& desc);
Result<int> OpenEpoll(const pb::FileDesc& desc);
Result<int> OpenInotify(const pb::FileDesc& desc);
// FILE_PIDFD in the root seed: a pidfd of a process ended and reaped, with
// the description's flags (RenewPidfds gives a live one its process).
Result<int> OpenPidfd(const pb::FileDesc& desc);
// In a seed whose children and zombies are made, before its fds go to
// their numbers: each pidfd it holds of a PID, opened again as a pidfd of
// that PID at its planned fd (in this process only), once another seed has
// made that process if it is not there yet (up to 10 s).
Status RenewPidfds(const pb::FileTable& table, const pb::ProcessImage& proc, const OpenedFiles& opened);
// FILE_TERMINAL: the restorer's `restorer_fd` (the terminal) opened again.
Result<int> OpenTerminal(const pb::FileDesc& desc, int restorer_fd);
// Pseudo-terminal pairs inside the tree (file_pty.cc).
// Whether a /proc link names a pty master.
bool IsPtyMaster(const std::string& link);
// N of /dev/pts/N for a pty slave's device number, none for another device.
std::optional<uint32_t> PtySlaveIndex(dev_t rdev);
Status DumpPtyMaster(const FdSource& src, pb::FileDesc* desc);
// Every pair of the table made again in its state (PtyPair); returns fd
// per FileDesc id of its master and slaves.
Status OpenPtys(const pb::FileTable& table, std::map<uint32_t, int>* fds);
// In a seed that has just become a session leader: `fd`, if a terminal,
// becomes its controlling terminal (an error if another session has it).
Status TakeControllingTerminal(int fd);
// Both ends of every pipe of the table; returns fd per FileDesc id.
// `recreated`: where deleted FIFOs were made again (by DeletedKey).
Status OpenPipes(const pb::FileTable& table, const std::map<std::string, std::string>& recreated,
                 std::map<uint32_t, int>* fds);
// Shared anonymous memory objects and memfds: filled, returned as fds.
Status OpenSharedMemory(const pb::FileTable& table, const std::string& image_dir, std::map<uint64_t, int>* fds);

// UNIX sockets (file_unix.cc).
// Every UNIX socket of the caller's network namespace, by inode.
Result<std::map<uint64_t, UnixDiag>> ReadUnixDiag();
// An end of a socketpair, with what waits in its queue (fds in flight
// go to b.in_flight); anything else is refused. REQUIRES: the owner frozen.
Status DumpUnixSocket(FileTableBuilder& b, const FdSource& src, const std::map<uint64_t, UnixDiag>& diag,
                      pb::FileDesc* desc);
// Whether the dump carries a connection waiting in the queue of one of the
// tree's UNIX listeners, from `client` (its ino, 0 if closed; `ours`: the
// tree holds it): only from a client of the tree that wrote nothing yet.
bool WaitingCarried(const std::map<uint64_t, UnixDiag>& diag, uint64_t client, bool ours);
// Refuses a socket whose other end lives outside the table.
Status CheckUnixPeers(const pb::FileTable& table, const std::map<uint64_t, UnixDiag>& diag);
// Every pair and socket alone made, with its options (an alone one bound
// and listening); returns fd per FileDesc id, and in `lone_ends` the other
// end of a pair whose peer was closed, by the socket's id (kept to refill
// its queue).
Status OpenUnixSockets(const pb::FileTable& table, std::map<uint32_t, int>* fds, std::map<uint32_t, int>* lone_ends);
// Once every description of the table is open (`fd_of`: its fd): each
// queue refilled from the other end, fds in flight passed along with their
// bytes, then shutdowns, SO_PEEK_OFF and flags set. Closes `lone_ends`.
Status FillUnixSockets(const pb::FileTable& table, const std::function<int(uint32_t)>& fd_of,
                       std::map<uint32_t, int>* lone_ends);

// A copy of `fd` of `pid` in this process: the same open file
// (pidfd_getfd), for reading what only the file itself can say.
Result<UniqueFd> CopyFd(pid_t pid, int fd);

// IPv4/IPv6 sockets (file_inet.cc): a TCP listener, a bound or new TCP
// socket, an established TCP connection (held in repair mode and locked:
// b.repaired), a UDP socket. Anything else is refused. REQUIRES: the
// owner frozen.
Status DumpInetSocket(FileTableBuilder& b, const FdSource& src, pb::FileDesc* desc);
// A connection the dump held, let go as it was (repair mode left, its
// packets let through): the tree goes on.
void ReleaseConnection(const RepairedSocket& r);
// Made again: options, bind, listen or connect (a connection in repair
// mode, queues refilled), O_NONBLOCK. A caller who may not repair a
// connection (no CAP_NET_ADMIN: a deputy rebuilding its process as its
// user) gets the connection's socket new, options set, for PlaceConnection.
Result<int> OpenInetSocket(const pb::FileDesc& desc);
// By the restorer (root), once the tree is rebuilt and still held (the end
// of restore.cc's RebuildAll, so that a failure kills it), long before
// FinishConnection at the release: the connection at `fd`
// of `pid`, if OpenInetSocket left it new, is bound and connected in
// repair mode with its queues refilled, on a copy of the fd (pidfd_getfd;
// the socket stays its opener's, owned by its user).
Status PlaceConnection(pid_t pid, int fd, const pb::InetSocket& in);
// Once the whole tree is restored: the connection at `fd` of `pid` leaves
// repair mode, sends what was never sent, and is let through.
Status FinishConnection(pid_t pid, int fd, const pb::InetSocket& in);

// memfd (file_memfd.cc).
// Whether a /proc link or a mapping's path names a memfd ("/memfd:NAME").
bool IsMemfdName(const std::string& path);
// If the object open at `fd` (through `path`) is a memfd, marks `shm` so,
// with its name and seals; refuses one of huge pages.
Status DescribeMemfd(const std::string& path, int fd, pb::SharedMemory* shm);
Status DumpMemfd(FileTableBuilder& b, const FdSource& src, pb::FileDesc* desc);
// The object itself, empty, sealable; the caller fills it.
Result<int> MakeMemfd(const pb::SharedMemory& shm);
// A description of the object open at `object_fd`.
Result<int> OpenMemfd(const pb::FileDesc& desc, int object_fd);
// The seals of the tree's memfds, added once every process has mapped
// them: Hold takes each object through the root seed's planned fd (before
// the seeds close theirs), Apply seals. Not thread-safe.
class MemfdSeals {
 public:
  MemfdSeals() = default;
  ~MemfdSeals();
  MemfdSeals(const MemfdSeals&) = delete;
  MemfdSeals& operator=(const MemfdSeals&) = delete;
  Status Hold(const pb::FileTable& table, pid_t root, const OpenedFiles& opened);
  Status Apply();

 private:
  std::vector<std::pair<int, uint32_t>> held_;  // fd, seals
};

// The kind of file behind fd `fd`'s /proc link `link` that the dump refuses
// outright, in one word ("namespace", or an anonymous inode's name
// such as "io_uring"), or "" if the dump takes it (or decides later).
// FileTableBuilder::AddFd refuses exactly these.
std::string RefusedFileKind(const std::string& link, int fd);

// The first process not in `tree` (this one never is: it may hold fds of
// the tree's) for which `holds(pid)` is true, in /proc's order; 0 if none,
// -1 if /proc cannot be read.
pid_t FirstProcessOutside(const std::set<pid_t>& tree, const std::function<bool(pid_t)>& holds);

// A file by identity (st_dev, st_ino), as a maps line also names it.
using FileId = std::pair<dev_t, ino_t>;

// The path of the POSIX shared memory object (IsPosixSharedMemory) that is
// file `id`, whose /proc link (fd, mapping) reads `path`, " (deleted)"
// taken off into `deleted`; "" if it is none. glibc's sem_open makes a
// semaphore under a temporary name, maps it, links it to its own name and
// removes the temporary one: the mapping then reads "/dev/shm/sem.XXXXXX
// (deleted)" while the object is there under its name, found by inode.
std::string PosixShmPath(const std::string& path, bool deleted, FileId id);
// Adds the POSIX shared memory objects `pid` has open or mapped to `out`.
// `maps`: its /proc/PID/maps if the caller has read it already.
void PosixShmOf(pid_t pid, std::map<FileId, std::string>* out, const std::string* maps = nullptr);
// The first process outside `tree` that has one of `objects` open or
// mapped (by identity, whatever name its link reads), as
// FirstProcessOutside; `held` gets that object's path.
pid_t SharedMemoryHolderOutside(const std::map<FileId, std::string>& objects, const std::set<pid_t>& tree,
                                std::string* held);

// Whether a process not in `tree` holds pipe `ino` (its other end, for a
// pipe one end of which the tree holds): this process counts as outside
// (roamd holds the other end of a guest's stdio). Reads every process's
// fds in /proc: call it only for pipes the tree does not hold both ends of.
bool PipeHeldOutside(uint64_t ino, const std::set<pid_t>& tree);

// What waits in the kernel for the tree of `root`, the live tree, which a
// dump refuses as busy (file_inet.cc): connections to its TCP listeners,
// accepted by the kernel (its accept queues) or with their handshake under
// way (SYN received, its ACK not yet), and its UDP sockets with datagrams
// not read; the connections it is opening; and UNIX connections not
// accepted yet that cannot be carried (file_unix.cc), all of which a dump
// refuses. A move holds new INET ones off (net_lock.h; a UNIX listener's
// clients cannot be) and lets the tree take these, and finish opening
// those, before it freezes. Reads the tree's fds in /proc, two sock_diag
// dumps per family and one of UNIX sockets when the tree has any socket:
// cheap enough every few milliseconds for a while.
struct SocketBacklog {
  uint32_t to_accept = 0;    // in accept queues
  uint32_t handshakes = 0;   // SYN received, handshake not complete
  uint32_t udp_sockets = 0;  // UDP sockets with datagrams waiting
  uint64_t udp_bytes = 0;    // their queues' sizes (what the kernel charges them)
  // The tree's TCP connections being opened (SYN sent, connect() under
  // way), which the dump refuses for a moment.
  uint32_t opening = 0;
  // UNIX connections waiting to be accepted that the dump cannot carry:
  // to its listeners, from outside it or from a client that wrote already;
  // its own, to a listener outside.
  uint32_t unix_to_accept = 0;
  bool empty() const { return amount() == 0; }
  // Falls as the tree takes what waits (to see whether it does).
  uint64_t amount() const { return to_accept + handshakes + udp_sockets + udp_bytes + opening + unix_to_accept; }
  std::string Text() const;  // "3 connection(s) to accept, 1 UDP socket with datagrams waiting"
  // The ports new clients come to: the tree's TCP listeners' and its bound
  // UDP sockets' (host order), for net_lock.h HoldPorts.
  std::set<uint16_t> tcp_ports, udp_ports;
};
Result<SocketBacklog> SocketBacklogOf(pid_t root);

// When a tree that is taking what waits for it may freeze (the rules of a
// move's BacklogWait and of `roam checkpoint`): once nothing waits, or once
// it stops taking them (kPatience without one taken), or kLimit has
// passed; then the dump refuses it if something still waits. Pure: the
// caller looks (SocketBacklogOf) every kEvery and passes the time.
class BacklogDrain {
 public:
  static constexpr auto kPatience = std::chrono::milliseconds(300);
  static constexpr auto kLimit = std::chrono::seconds(2);
  static constexpr auto kEvery = std::chrono::milliseconds(5);
  explicit BacklogDrain(std::chrono::steady_clock::time_point start) : start_(start), since_(start) {}
  // After a look: true if it may freeze now. A look that failed says yes
  // (the dump looks itself).
  bool MayFreeze(const Result<SocketBacklog>& look, std::chrono::steady_clock::time_point now);

 private:
  std::chrono::steady_clock::time_point start_, since_;
  uint64_t amount_ = 0;  // SocketBacklog::amount() at the last look
};

}  // namespace roam
