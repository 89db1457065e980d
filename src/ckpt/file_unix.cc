// UNIX sockets. The ends of a connected pair (a socketpair, or a client
// and the socket a listener accepted for it), both held in the tree (or
// one of them closed): what the kernel knows of each end comes from
// sock_diag (NETLINK_SOCK_DIAG: type, peer, shutdown, name); the bytes and
// records waiting to be read are peeked through a copy of the socket
// (pidfd_getfd), walking the queue with SO_PEEK_OFF so that nothing is
// taken from it. A pair is made again with socketpair in the root seed,
// each end's queue refilled by sending from the other end, then the
// shutdowns, buffer sizes and options are set. (Its ends keep no name:
// getsockname on an accepted end answers unnamed after a restore.)
//
// A socket alone: a listener (with its backlog), a datagram socket bound
// to a name, a socket neither bound nor connected yet. Made again alone:
// bound to its name (a stale socket file left at the path by the killed
// process is removed first; the file's owner and mode are set again),
// listening. Connections waiting in a listener's queue, not accepted
// yet, whose clients are the tree's and wrote nothing yet (sock_diag
// lists them, UNIX_DIAG_ICONS): each client connects to the listener
// again, in the order of the queue, once it listens.
//
// Fds in flight (SCM_RIGHTS, not received yet) come with the peek, into
// this process: each becomes a description of the table (the same one as
// a process's fd when it is that file), and the restore sends them along
// with the bytes they came with, once every description is open.
//
// Refused, with the socket named: one of another family, one whose other
// end is held outside the tree, an epoll set, a TCP connection or a job's
// stdio in flight, a name relative to the process's directory; and, for
// now (kBusy, tried again later), a listener with connections waiting to
// be accepted from outside the tree or whose client wrote already, a
// client waiting for a listener outside the tree, and a socket alone with
// datagrams waiting.
#include <fcntl.h>
#include <linux/rtnetlink.h>
#include <linux/unix_diag.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "ckpt/files.h"
#include "ckpt/sock_diag.h"
#include "common/unique_fd.h"

#ifndef SO_PEEK_OFF
#define SO_PEEK_OFF 42
#endif

namespace roam {

namespace {

constexpr size_t kPeekBuffer = 4 << 20;  // the largest datagram read whole

}  // namespace

Result<std::map<uint64_t, UnixDiag>> ReadUnixDiag() {
  unix_diag_req req{};
  req.sdiag_family = AF_UNIX;
  req.udiag_states = ~0U;
  req.udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN | UDIAG_SHOW_ICONS;
  std::map<uint64_t, UnixDiag> out;
  Status st = SockDiagDump(&req, sizeof(req), [&](const void* payload, size_t size) {
    const auto* m = static_cast<const unix_diag_msg*>(payload);
    if (size < sizeof(*m)) return true;
    UnixDiag d;
    d.type = m->udiag_type;
    d.listening = m->udiag_state == 10;  // TCP_LISTEN
    d.connected = m->udiag_state == 1;   // TCP_ESTABLISHED: paired (its peer may be closed since)
    int len = static_cast<int>(size - NLMSG_ALIGN(sizeof(*m)));
    for (auto* a = reinterpret_cast<rtattr*>(const_cast<unix_diag_msg*>(m) + 1); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
      const char* data = static_cast<const char*>(RTA_DATA(a));
      const size_t asize = RTA_PAYLOAD(a);
      if (a->rta_type == UNIX_DIAG_NAME) {
        d.named = asize > 0;
        d.name.assign(data, asize);
      }
      if (a->rta_type == UNIX_DIAG_RQLEN && asize >= sizeof(unix_diag_rqlen)) {
        unix_diag_rqlen q;
        memcpy(&q, data, sizeof(q));
        d.rqueue = q.udiag_rqueue;
        d.wqueue = q.udiag_wqueue;
      }
      if (a->rta_type == UNIX_DIAG_PEER && asize >= 4) {
        uint32_t peer;
        memcpy(&peer, data, 4);
        d.peer = peer;
      }
      if (a->rta_type == UNIX_DIAG_SHUTDOWN && asize >= 1) d.shutdown = static_cast<uint8_t>(data[0]);
      if (a->rta_type == UNIX_DIAG_ICONS) {
        for (size_t i = 0; i + 4 <= asize; i += 4) {
          uint32_t client;
          memcpy(&client, data + i, 4);
          d.pending.push_back(client);
        }
      }
    }
    out[m->udiag_ino] = d;
    return true;
  });
  if (!st.ok()) return st;
  return out;
}

namespace {

// The fds a peek of `len` bytes at peek offset `off` brought (installed
// here; the caller's to keep or close), or none.
Result<std::vector<UniqueFd>> PeekAt(int s, int off, char* buf, size_t len, ssize_t* got, int* msg_flags) {
  if (setsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off)) != 0) return Status::Errno("SO_PEEK_OFF");
  alignas(cmsghdr) char control[CMSG_SPACE(253 * sizeof(int)) + CMSG_SPACE(sizeof(ucred))];
  iovec iov{buf, len};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = control;
  mh.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = recvmsg(s, &mh, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  *got = n;
  *msg_flags = mh.msg_flags;
  std::vector<UniqueFd> fds;
  if (n < 0) return fds;
  for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c != nullptr; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
      fds.emplace_back(fd);  // installed here by the peek
    }
  }
  return fds;
}

// The options of the socket at `fd` of `pid`, and its queue, peeked whole
// and in order (unless `no_queue`: a listener, an unconnected stream).
// Fds in flight go to b->in_flight for description `id` (refused without
// `b`). On a stream a peek stops after the buffer that carried fds, but
// where that buffer began cannot be told: this kernel's peek brings the
// fds of the next such buffer whatever its length. So a chunk of stream
// bytes with fds runs from the end of the last fds to the end of these.
Status PeekQueue(FileTableBuilder* b, uint32_t id, const FdSource& src, int type, pb::UnixSocket* out,
                 bool no_queue = false) {
  Result<UniqueFd> copy = CopyFd(src.pid, src.fd);
  if (!copy.ok()) return copy.status();
  const int s = copy->get();
  int peek_off = -1, sndbuf = 0, rcvbuf = 0, passcred = 0;
  socklen_t len = sizeof(int);
  getsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &peek_off, &len);
  len = sizeof(int);
  getsockopt(s, SOL_SOCKET, SO_SNDBUF, &sndbuf, &len);
  len = sizeof(int);
  getsockopt(s, SOL_SOCKET, SO_RCVBUF, &rcvbuf, &len);
  len = sizeof(int);
  getsockopt(s, SOL_SOCKET, SO_PASSCRED, &passcred, &len);
  out->set_peek_off(peek_off);
  out->set_sndbuf(sndbuf);
  out->set_rcvbuf(rcvbuf);
  out->set_passcred(passcred != 0);
  if (no_queue) return Status::Ok();
  std::unique_ptr<char[]> buf(new char[kPeekBuffer]);  // not zeroed: it sits in the frozen window
  Status st;
  int off = 0, empty_at = -1;
  bool cut = true;  // the next stream bytes start a chunk of their own
  for (;;) {
    ssize_t n = 0;
    int flags = 0;
    Result<std::vector<UniqueFd>> fds = PeekAt(s, off, buf.get(), kPeekBuffer, &n, &flags);
    if (!fds.ok()) {
      st = fds.status();
      break;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0) {
      st = Status::Errno("peek its queue");
      break;
    }
    if (flags & MSG_CTRUNC) {
      st = Status::Error(StatusCode::kCantMove, "more than 253 fds in flight in one message in " + src.link);
      break;
    }
    if (!fds->empty() && b == nullptr) {
      st = Status::Error(StatusCode::kCantMove, "file descriptors in flight in " + src.link + " are not supported");
      break;
    }
    if (flags & MSG_TRUNC) {
      st = Status::Error(StatusCode::kCantMove, "a datagram larger than 4 MiB is waiting in " + src.link);
      break;
    }
    if (n == 0 && type == SOCK_STREAM) break;  // the end of what waits
    if (n == 0 && fds->empty()) {
      // An empty datagram, or (a seqpacket socket shut down for reading)
      // the end of the queue. The kernel marks an empty datagram peeked,
      // and a second peek at the same offset passes it; the end answers 0
      // again.
      if (empty_at == off && type == SOCK_SEQPACKET && (out->shutdown() & 1)) {
        out->mutable_queued()->RemoveLast();
        break;
      }
      empty_at = off;
      out->add_queued();
      continue;
    }
    if (type == SOCK_STREAM && fds->empty()) {
      if (cut || out->queued_size() == 0) out->add_queued();
      out->mutable_queued(out->queued_size() - 1)->append(buf.get(), static_cast<size_t>(n));
      cut = false;
    } else {
      out->add_queued(std::string(buf.get(), static_cast<size_t>(n)));
      if (!fds->empty()) {
        b->in_flight.push_back({id, out->queued_size() - 1, std::move(*fds)});
        cut = true;  // what follows comes in a buffer of its own
      }
    }
    off += static_cast<int>(n);
  }
  setsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &peek_off, sizeof(peek_off));  // as it was
  return st;
}

// A listener whose waiting connections cannot be carried: "not now".
Status PendingRefused(int count, const std::string& shown, const std::string& why) {
  return Status::Error(StatusCode::kBusy, "a listening UNIX socket with " + std::to_string(count) +
                                              " connection(s) waiting to be accepted" + why + " (" + shown + ")");
}

}  // namespace

Status DumpUnixSocket(FileTableBuilder& b, const FdSource& src, const std::map<uint64_t, UnixDiag>& diag,
                      pb::FileDesc* desc) {
  const uint64_t ino = src.st.st_ino;
  auto it = diag.find(ino);
  if (it == diag.end()) {
    return Status::Error(StatusCode::kCantMove, "sockets are not supported (" + src.link +
                                                    "; only unnamed UNIX sockets, the ends of socketpairs, are)");
  }
  const UnixDiag& d = it->second;
  if (d.type != SOCK_STREAM && d.type != SOCK_DGRAM && d.type != SOCK_SEQPACKET) {
    return Status::Error(StatusCode::kCantMove, "a UNIX socket of type " + std::to_string(d.type) + " is not supported");
  }
  pb::UnixSocket* u = desc->mutable_unix_socket();
  u->set_ino(ino);
  u->set_type(d.type);
  u->set_shutdown(d.shutdown);
  desc->set_kind(pb::FILE_UNIX_SOCKET);
  if (d.connected) {
    u->set_peer_ino(d.peer);
    return PeekQueue(&b, desc->id(), src, d.type, u);
  }
  // Alone: a listener, a bound datagram socket, a new one.
  const std::string shown = src.link + (d.named && d.name[0] != '\0' ? " at " + std::string(d.name.c_str()) : "");
  if (d.listening && d.rqueue > 0) {
    // Carried if their clients are the tree's and wrote nothing yet
    // (CheckUnixPeers, once the table is whole).
    if (d.pending.size() != d.rqueue) return PendingRefused(static_cast<int>(d.rqueue), shown, "");
    for (uint64_t client : d.pending) u->add_pending(client);
  }
  if (d.named && d.name[0] != '\0' && d.name[0] != '/') {
    return Status::Error(StatusCode::kCantMove, "a UNIX socket bound to a relative path is not supported (" + shown + ")");
  }
  u->set_alone(true);
  u->set_name(d.name);
  u->set_listening(d.listening);
  u->set_backlog(d.wqueue);
  struct stat sb;
  if (d.named && d.name[0] == '/' && stat(d.name.c_str(), &sb) == 0 && S_ISSOCK(sb.st_mode)) {
    u->set_mode(sb.st_mode & 07777);
    u->set_uid(sb.st_uid);
    u->set_gid(sb.st_gid);
  }
  Status st = PeekQueue(nullptr, desc->id(), src, d.type, u, /*no_queue=*/d.listening || d.type != SOCK_DGRAM);
  if (st.ok() && u->queued_size() > 0) {
    return Status::Error(StatusCode::kBusy, "a UNIX socket alone with datagrams waiting to be read (" + shown + ")");
  }
  return st;
}

bool WaitingCarried(const std::map<uint64_t, UnixDiag>& diag, uint64_t client, bool ours) {
  if (client == 0 || !ours) return false;
  auto c = diag.find(client);
  return c != diag.end() && c->second.wqueue == 0 && c->second.peer == 0;
}

Status CheckUnixPeers(const pb::FileTable& table, const std::map<uint64_t, UnixDiag>& diag) {
  std::map<uint64_t, uint32_t> ours;  // ino -> FileDesc id
  for (const pb::FileDesc& d : table.files()) {
    if (d.kind() == pb::FILE_UNIX_SOCKET) ours[d.unix_socket().ino()] = d.id();
  }
  // A connection waiting in a listener's queue is made again by connecting
  // its client to the listener restored: both must be the tree's, and the
  // client must not have written yet (what it wrote waits where no one can
  // read it without accepting). The kernel shows the client's end as
  // connected to no one, as if its peer had closed.
  for (const pb::FileDesc& d : table.files()) {
    if (d.kind() != pb::FILE_UNIX_SOCKET) continue;
    const pb::UnixSocket& u = d.unix_socket();
    const std::string shown = "socket:[" + std::to_string(u.ino()) + "]" +
                              (!u.name().empty() && u.name()[0] == '/' ? " at " + std::string(u.name().c_str()) : "");
    for (uint64_t client : u.pending()) {
      const bool mine = client != 0 && ours.count(client) != 0;
      if (!WaitingCarried(diag, client, mine)) {
        return PendingRefused(u.pending_size(), shown,
                              mine ? ", one whose client already wrote to it" : ", one from outside the tree");
      }
    }
    if (!u.pending().empty() && u.name().empty()) return PendingRefused(u.pending_size(), shown, ", on no name");
  }
  for (const auto& [ino, l] : diag) {
    if (!l.listening || ours.count(ino)) continue;
    for (uint64_t client : l.pending) {
      if (client == 0 || !ours.count(client)) continue;
      return Status::Error(StatusCode::kBusy, "UNIX socket socket:[" + std::to_string(client) +
                                                  "]: its connection waits to be accepted by socket:[" +
                                                  std::to_string(ino) + "], outside the tree");
    }
  }
  for (const pb::FileDesc& d : table.files()) {
    if (d.kind() != pb::FILE_UNIX_SOCKET) continue;
    const uint64_t peer = d.unix_socket().peer_ino();
    if (peer != 0 && !ours.count(peer) && diag.count(peer)) {
      return Status::Error(StatusCode::kCantMove, "UNIX socket socket:[" + std::to_string(d.unix_socket().ino()) +
                                                      "]: its other end socket:[" + std::to_string(peer) +
                                                      "] is held outside the tree");
    }
  }
  return Status::Ok();
}

namespace {

Status SetOptions(int fd, const pb::UnixSocket& u) {
  // The kernel doubles what it is given; FORCE: above the sysctl maximum,
  // as the process may have had it (the restorer is root).
  int snd = u.sndbuf() / 2, rcv = u.rcvbuf() / 2, pass = u.passcred() ? 1 : 0;
  if (snd > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &snd, sizeof(snd)) != 0 &&
      setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof(snd)) != 0) {
    return Status::Errno("SO_SNDBUF");
  }
  if (rcv > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv)) != 0 &&
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv)) != 0) {
    return Status::Errno("SO_RCVBUF");
  }
  if (pass && setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &pass, sizeof(pass)) != 0) return Status::Errno("SO_PASSCRED");
  return Status::Ok();
}

// Sends `u`'s queue from `from`, so that it waits at the other end, with
// its fds in flight (`fd_of`: the fd of a description).
Status Refill(int from, const pb::UnixSocket& u, const std::function<int(uint32_t)>& fd_of) {
  std::map<uint32_t, const pb::InFlightFds*> fds_at;
  for (const pb::InFlightFds& f : u.in_flight()) fds_at[f.chunk()] = &f;
  for (int i = 0; i < u.queued_size(); ++i) {
    const std::string& chunk = u.queued(i);
    std::vector<int> fds;
    if (auto it = fds_at.find(static_cast<uint32_t>(i)); it != fds_at.end()) {
      for (uint32_t id : it->second->files()) {
        const int fd = fd_of(id);
        if (fd < 0) return Status::Error("a file in flight in socket:[" + std::to_string(u.ino()) + "] is not open");
        fds.push_back(fd);
      }
    }
    // On a stream the fds go with the chunk's last byte, in a buffer of its
    // own: a read that reaches it gets them, as one that reached the
    // buffer they came with did (which began somewhere in the chunk), and
    // a read of the bytes before it does not.
    const bool last_byte = !fds.empty() && u.type() == SOCK_STREAM && chunk.size() > 1;
    alignas(cmsghdr) char control[CMSG_SPACE(253 * sizeof(int))];
    size_t done = 0;
    do {
      const size_t end = last_byte && done < chunk.size() - 1 ? chunk.size() - 1 : chunk.size();
      iovec iov{const_cast<char*>(chunk.data()) + done, end - done};
      msghdr mh{};
      mh.msg_iov = &iov;
      mh.msg_iovlen = 1;
      const bool with_fds = !fds.empty() && end == chunk.size();
      if (with_fds) {
        mh.msg_control = control;
        mh.msg_controllen = CMSG_SPACE(fds.size() * sizeof(int));
        cmsghdr* c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
        memcpy(CMSG_DATA(c), fds.data(), fds.size() * sizeof(int));
      }
      ssize_t n = sendmsg(from, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Status::Errno("refill UNIX socket socket:[" + std::to_string(u.ino()) + "]");
      done += static_cast<size_t>(n);
      if (with_fds && n > 0) fds.clear();  // sent with this part (a stream may take less: the rest goes plain)
    } while (done < chunk.size() && u.type() == SOCK_STREAM);
  }
  return Status::Ok();
}

Status Finish(int fd, const pb::FileDesc& d) {
  const pb::UnixSocket& u = d.unix_socket();
  if ((u.shutdown() & 1) && shutdown(fd, SHUT_RD) != 0) return Status::Errno("shutdown SHUT_RD");
  if ((u.shutdown() & 2) && shutdown(fd, SHUT_WR) != 0) return Status::Errno("shutdown SHUT_WR");
  const int peek_off = u.peek_off();
  if (peek_off >= 0 && setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &peek_off, sizeof(peek_off)) != 0) {
    return Status::Errno("SO_PEEK_OFF");
  }
  if ((d.flags() & O_NONBLOCK) && fcntl(fd, F_SETFL, O_NONBLOCK) != 0) return Status::Errno("O_NONBLOCK");
  return Status::Ok();
}

// The clients (ino) of the connections that wait in the table's listeners.
std::set<uint64_t> PendingClients(const pb::FileTable& table) {
  std::set<uint64_t> out;
  for (const pb::FileDesc& d : table.files()) {
    if (d.kind() == pb::FILE_UNIX_SOCKET)
      out.insert(d.unix_socket().pending().begin(), d.unix_socket().pending().end());
  }
  return out;
}

// A socket alone, made again: options, name, listen.
Result<int> OpenAlone(const pb::FileDesc& d) {
  const pb::UnixSocket& u = d.unix_socket();
  int s = socket(AF_UNIX, u.type() | SOCK_CLOEXEC, 0);
  if (s < 0) return Status::Errno("socket");
  UniqueFd closer(s);
  Status st = SetOptions(s, u);
  if (!st.ok()) return st;
  if (!u.name().empty()) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (u.name().size() > sizeof(a.sun_path)) return Status::Error("a UNIX socket name too long");
    memcpy(a.sun_path, u.name().data(), u.name().size());
    const bool path = u.name()[0] != '\0';
    const std::string at = path ? std::string(u.name().c_str()) : u.name().substr(1);
    // The killed process's socket file stays at its path: a socket file,
    // and only that, is removed to bind there again.
    struct stat sb;
    if (path && lstat(at.c_str(), &sb) == 0 && S_ISSOCK(sb.st_mode)) unlink(at.c_str());
    if (bind(s, reinterpret_cast<sockaddr*>(&a), static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + u.name().size())) != 0) {
      return Status::Errno("bind to " + (path ? at : "@" + at) + " again");
    }
    if (path && u.mode() != 0) {
      if (chown(at.c_str(), u.uid(), u.gid()) != 0 || chmod(at.c_str(), u.mode()) != 0) {
        return Status::Errno("owner and mode of " + at);
      }
    }
  }
  if (u.listening() && listen(s, static_cast<int>(u.backlog())) != 0) return Status::Errno("listen");
  st = Finish(s, d);
  if (!st.ok()) return st;
  return closer.release();
}

}  // namespace

Status OpenUnixSockets(const pb::FileTable& table, std::map<uint32_t, int>* fds, std::map<uint32_t, int>* lone_ends) {
  std::map<uint64_t, const pb::FileDesc*> by_ino;
  for (const pb::FileDesc& d : table.files()) {
    if (d.kind() == pb::FILE_UNIX_SOCKET) by_ino[d.unix_socket().ino()] = &d;
  }
  const std::set<uint64_t> waiting = PendingClients(table);
  for (const pb::FileDesc& d : table.files()) {
    if (d.kind() != pb::FILE_UNIX_SOCKET || fds->count(d.id())) continue;
    const pb::UnixSocket& u = d.unix_socket();
    if (waiting.count(u.ino())) continue;  // connected below, once its listener listens
    if (u.alone()) {
      Result<int> fd = OpenAlone(d);
      if (!fd.ok()) return fd.status().Prefixed("file " + std::to_string(d.id()) + ": ");
      (*fds)[d.id()] = *fd;
      continue;
    }
    auto peer_it = by_ino.find(u.peer_ino());
    const pb::FileDesc* peer = peer_it == by_ino.end() || peer_it->second == &d ? nullptr : peer_it->second;
    int sv[2];
    if (socketpair(AF_UNIX, u.type() | SOCK_CLOEXEC, 0, sv) != 0) return Status::Errno("socketpair");
    (*fds)[d.id()] = sv[0];
    if (peer != nullptr) {
      (*fds)[peer->id()] = sv[1];
    } else {
      (*lone_ends)[d.id()] = sv[1];  // its other end was closed: kept only to refill the queue
    }
    Status st = SetOptions(sv[0], u);
    if (st.ok() && peer != nullptr) st = SetOptions(sv[1], peer->unix_socket());
    if (!st.ok()) return st.Prefixed("file " + std::to_string(d.id()) + ": ");
  }
  // The connections that waited to be accepted wait again, in the same
  // order (the restorer is their clients' peer credentials).
  for (const pb::FileDesc& l : table.files()) {
    if (l.kind() != pb::FILE_UNIX_SOCKET || l.unix_socket().pending().empty()) continue;
    const pb::UnixSocket& u = l.unix_socket();
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (u.name().empty() || u.name().size() > sizeof(a.sun_path)) return Status::Error("a listener without a name");
    memcpy(a.sun_path, u.name().data(), u.name().size());
    const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + u.name().size());
    for (uint64_t ino : u.pending()) {
      auto c = by_ino.find(ino);
      if (c == by_ino.end())
        return Status::Error("socket:[" + std::to_string(ino) + "], waiting to be accepted, is not in the image");
      const pb::FileDesc& d = *c->second;
      int s = socket(AF_UNIX, d.unix_socket().type() | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      if (s < 0) return Status::Errno("socket");
      (*fds)[d.id()] = s;
      Status st = SetOptions(s, d.unix_socket());
      if (st.ok() && connect(s, reinterpret_cast<sockaddr*>(&a), len) != 0)
        st = Status::Errno("connect to its listener again");
      if (st.ok() && fcntl(s, F_SETFL, 0) != 0) st = Status::Errno("fcntl F_SETFL");  // Finish sets its own
      if (!st.ok()) return st.Prefixed("file " + std::to_string(d.id()) + ": ");
    }
  }
  return Status::Ok();
}

Status FillUnixSockets(const pb::FileTable& table, const std::function<int(uint32_t)>& fd_of,
                       std::map<uint32_t, int>* lone_ends) {
  struct Closer {
    std::map<uint32_t, int>* fds;
    ~Closer() {
      for (auto& [id, fd] : *fds) close(fd);
      fds->clear();
    }
  } closer{lone_ends};
  std::map<uint64_t, const pb::FileDesc*> by_ino;
  for (const pb::FileDesc& d : table.files()) {
    if (d.kind() == pb::FILE_UNIX_SOCKET) by_ino[d.unix_socket().ino()] = &d;
  }
  const std::set<uint64_t> waiting = PendingClients(table);
  // Every queue first (a shutdown would stop the sends), then the rest.
  for (const pb::FileDesc& d : table.files()) {
    if (d.kind() != pb::FILE_UNIX_SOCKET || d.unix_socket().alone()) continue;
    if (waiting.count(d.unix_socket().ino())) continue;  // nothing was written to it
    const pb::UnixSocket& u = d.unix_socket();
    auto lone = lone_ends->find(d.id());
    auto peer = by_ino.find(u.peer_ino());
    const int from = lone != lone_ends->end() ? lone->second
                     : peer != by_ino.end()   ? fd_of(peer->second->id())
                                              : -1;
    if (from < 0) return Status::Error("file " + std::to_string(d.id()) + ": its pair's other end is not open");
    Status st = Refill(from, u, fd_of);
    if (!st.ok()) return st.Prefixed("file " + std::to_string(d.id()) + ": ");
  }
  for (const pb::FileDesc& d : table.files()) {
    if (d.kind() != pb::FILE_UNIX_SOCKET || d.unix_socket().alone()) continue;
    Status st = Finish(fd_of(d.id()), d);
    if (!st.ok()) return st.Prefixed("file " + std::to_string(d.id()) + ": ");
  }
  return Status::Ok();
}

}  // namespace roam
