// `roam image show` (ckpt/image_show.h) says what each socket and pipe of
// an image is: a UNIX socket's type, name, peer, waiting clients and
// queued bytes, a TCP or UDP socket's addresses and queues, a pipe's
// buffered bytes, the process a pidfd names. Pure: an Image built here.
#include "ckpt/image_show.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

namespace roam {
namespace {

std::string Sockaddr4(const char* ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip, &a.sin_addr);
  return std::string(reinterpret_cast<const char*>(&a), sizeof(a));
}

// Adds `d` to the table and gives it to the process at `fd`.
void Give(Image& image, int fd, pb::FileDesc d) {
  d.set_id(static_cast<uint32_t>(image.files.files_size() + 1));
  pb::Fd* f = image.procs[0].add_fds();
  f->set_fd(fd);
  f->set_file_id(d.id());
  *image.files.add_files() = std::move(d);
}

Image SocketsAndPipes() {
  Image image;
  image.procs.emplace_back();
  image.procs[0].set_pid(42);
  pb::FileDesc l;
  l.set_kind(pb::FILE_UNIX_SOCKET);
  l.mutable_unix_socket()->set_ino(100);
  l.mutable_unix_socket()->set_type(SOCK_STREAM);
  l.mutable_unix_socket()->set_alone(true);
  l.mutable_unix_socket()->set_listening(true);
  l.mutable_unix_socket()->set_name(std::string("\0srv\n", 5));
  l.mutable_unix_socket()->add_pending(101);
  Give(image, 3, l);
  pb::FileDesc c;
  c.set_kind(pb::FILE_UNIX_SOCKET);
  c.mutable_unix_socket()->set_ino(101);
  c.mutable_unix_socket()->set_type(SOCK_STREAM);
  Give(image, 4, c);
  pb::FileDesc p;
  p.set_kind(pb::FILE_UNIX_SOCKET);
  p.mutable_unix_socket()->set_ino(102);
  p.mutable_unix_socket()->set_peer_ino(103);
  p.mutable_unix_socket()->set_type(SOCK_SEQPACKET);
  p.mutable_unix_socket()->add_queued("ab");
  p.mutable_unix_socket()->add_queued("cde");
  Give(image, 5, p);
  pb::FileDesc t;
  t.set_kind(pb::FILE_INET_SOCKET);
  t.mutable_inet_socket()->set_family(AF_INET);
  t.mutable_inet_socket()->set_protocol(IPPROTO_TCP);
  t.mutable_inet_socket()->set_local(Sockaddr4("10.1.2.3", 8080));
  t.mutable_inet_socket()->set_remote(Sockaddr4("10.1.2.9", 5555));
  t.mutable_inet_socket()->mutable_connection()->set_send_queue("xyz");
  t.mutable_inet_socket()->mutable_connection()->set_recv_queue("12345");
  Give(image, 6, t);
  t.mutable_inet_socket()->set_remote(Sockaddr4("10.1.2.9", 5556));  // its client shut down its side: CLOSE_WAIT
  t.mutable_inet_socket()->mutable_connection()->set_send_queue("");
  t.mutable_inet_socket()->mutable_connection()->set_read_shut(true);
  Give(image, 9, t);
  pb::FileDesc u;
  u.set_kind(pb::FILE_INET_SOCKET);
  u.mutable_inet_socket()->set_family(AF_INET);
  u.mutable_inet_socket()->set_protocol(IPPROTO_UDP);
  Give(image, 7, u);
  pb::FileDesc r;
  r.set_kind(pb::FILE_PIPE);
  r.set_pipe_ino(200);
  Give(image, 8, r);
  pb::Pipe* buffered = image.files.add_pipes();
  buffered->set_ino(200);
  buffered->set_data("hello");
  return image;
}

TEST(ImageShow, SaysWhatEachSocketAndPipeIs) {
  const std::string table = ImageTable(SocketsAndPipes());
  for (const char* want :
       {"unix:[100] stream listening @srv?, 1 waiting to be accepted",
        "unix:[101] stream waiting to be accepted by 100", "unix:[102] seqpacket connected to 103, 5 bytes queued",
        "tcp 10.1.2.3:8080 -> 10.1.2.9:5555, established, 3 bytes unacknowledged, 5 unread",
        "tcp 10.1.2.3:8080 -> 10.1.2.9:5556, reads ended, 0 bytes unacknowledged, 5 unread", "udp *",
        "pipe:[200], 5 bytes queued"}) {
    EXPECT_NE(table.find(want), std::string::npos) << "no '" << want << "' in:\n" << table;
  }
  const nlohmann::json j = ImageJson(SocketsAndPipes());
  EXPECT_EQ(j["processes"][0]["fds"][1]["detail"], "unix:[101] stream waiting to be accepted by 100");
}

TEST(ImageShow, SaysWhichProcessAPidfdNames) {
  Image image;
  image.procs.emplace_back();
  image.procs[0].set_pid(42);
  pb::FileDesc d;
  d.set_kind(pb::FILE_PIDFD);
  d.set_pidfd_pid(43);
  Give(image, 3, d);
  d.set_pidfd_pid(-1);
  Give(image, 4, d);
  const std::string table = ImageTable(image);
  for (const char* want :
       {"3 pidfd       pos 0          of pid 43", "4 pidfd       pos 0          of a process reaped"}) {
    EXPECT_NE(table.find(want), std::string::npos) << "no '" << want << "' in:\n" << table;
  }
}

}  // namespace
}  // namespace roam
