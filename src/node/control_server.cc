#include "node/control_server.h"

#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "common/file_util.h"
#include "wire/frame.h"

namespace roam {

using asio::local::stream_protocol;

namespace {

std::string UserName(uid_t uid) {
  passwd pw{}, *res = nullptr;
  char buf[4096];
  if (getpwuid_r(uid, &pw, buf, sizeof buf, &res) == 0 && res) return pw.pw_name;
  return std::to_string(uid);
}

}  // namespace

pb::Credentials CredentialsOf(const ControlServer::Peer& peer) {
  pb::Credentials c;
  c.set_uid(peer.uid);
  c.set_gid(peer.gid);
  c.set_user(UserName(peer.uid));
  // Supplementary groups: the kernel's view of the caller, not its word.
  for (gid_t g : peer.groups) c.add_groups(g);
  return c;
}

class ControlServer::Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(stream_protocol::socket socket, const Handler& handler, const RunHandler& run_handler)
      : socket_(std::move(socket)), handler_(handler), run_handler_(run_handler) {}

  void Start() {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(socket_.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return;
    peer_.pid = cred.pid;
    peer_.uid = cred.uid;
    peer_.gid = cred.gid;
    // SO_PEERGROUPS: taken with the credentials at connect(), so it cannot
    // be another process's (reading /proc/PID/status by the PID could be,
    // and cost a file read per request).
    peer_.groups.resize(64);
    for (;;) {
      socklen_t glen = static_cast<socklen_t>(peer_.groups.size() * sizeof(gid_t));
      if (::getsockopt(socket_.native_handle(), SOL_SOCKET, SO_PEERGROUPS, peer_.groups.data(), &glen) == 0) {
        peer_.groups.resize(glen / sizeof(gid_t));
        break;
      }
      if (errno != ERANGE || glen / sizeof(gid_t) <= peer_.groups.size()) return;
      peer_.groups.resize(glen / sizeof(gid_t));
    }
    ReadHeader();
  }

 private:
  void ReadHeader() {
    auto self = shared_from_this();
    asio::async_read(socket_, asio::buffer(header_), [this, self](asio::error_code ec, size_t) {
      if (ec) return;
      uint32_t n = FrameLength(header_);
      if (n > kMaxFrame) return Fail("control frame too large");
      body_.resize(n);
      asio::async_read(socket_, asio::buffer(body_), [this, self](asio::error_code ec2, size_t) {
        if (ec2) return;
        pb::ControlRequest req;
        if (!req.ParseFromString(body_)) return Fail("malformed control request");
        if (req.has_run()) return run_handler_(req.run(), peer_, std::move(socket_));
        handler_(req, peer_, [this, self](const pb::ControlReply& reply) { Reply(reply, true); });
      });
    });
  }

  void Fail(const std::string& why) {
    pb::ControlReply reply;
    reply.set_error(why);
    Reply(reply, false);
  }

  void Reply(const pb::ControlReply& reply, bool keep_going) {
    auto self = shared_from_this();
    out_ = EncodeFrame(reply);
    asio::async_write(socket_, asio::buffer(out_), [this, self, keep_going](asio::error_code ec, size_t) {
      if (!ec && keep_going) ReadHeader();
    });
  }

  stream_protocol::socket socket_;
  const Handler& handler_;
  const RunHandler& run_handler_;
  Peer peer_;
  unsigned char header_[4] = {};
  std::string body_, out_;
};

ControlServer::ControlServer(asio::io_context& io, Handler handler, RunHandler run_handler)
    : io_(io), handler_(std::move(handler)), run_handler_(std::move(run_handler)), acceptor_(io) {}

ControlServer::~ControlServer() {
  if (!path_.empty()) ::unlink(path_.c_str());
}

Status ControlServer::Listen(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    if (Status st = MakeDirs(path.substr(0, slash)); !st.ok()) return st;
  }
  // A socket left by a crashed roamd: refuse if someone still answers on it.
  if (::access(path.c_str(), F_OK) == 0) {
    stream_protocol::socket probe(io_);
    asio::error_code ec;
    probe.connect(stream_protocol::endpoint(path), ec);
    if (!ec) return Status::Error("control socket " + path + ": another roamd is running");
    ::unlink(path.c_str());
  }
  asio::error_code ec;
  acceptor_.open(stream_protocol(), ec);
  if (!ec) acceptor_.bind(stream_protocol::endpoint(path), ec);
  if (!ec) acceptor_.listen(64, ec);
  if (ec) return Status::Error("control socket " + path + ": " + ec.message());
  path_ = path;
  ::chmod(path.c_str(), 0666);  // permissions are enforced per request, by uid
  Accept();
  return Status::Ok();
}

void ControlServer::Accept() {
  acceptor_.async_accept([this](asio::error_code ec, stream_protocol::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) std::make_shared<Connection>(std::move(socket), handler_, run_handler_)->Start();
    Accept();
  });
}

}  // namespace roam
