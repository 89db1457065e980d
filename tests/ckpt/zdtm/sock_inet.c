/*
 * IPv4 and IPv6 sockets that hold no connection survive with their
 * addresses and options:
 *   L4: a TCP listener on 127.0.0.1 (an ephemeral port), backlog 7,
 *       SO_REUSEADDR, SO_KEEPALIVE, TCP_KEEPIDLE 77, O_NONBLOCK;
 *   L6: a TCP listener on [::1], IPV6_V6ONLY (skipped without IPv6);
 *   U:  a UDP socket bound to 127.0.0.1, SO_RCVBUF raised;
 *   C:  a UDP socket connected to U;
 *   N:  a new TCP socket, neither bound nor connected, TCP_NODELAY.
 * After the restore each has its address (and C its peer) and options,
 * and works: a client connects to L4 and L6 and is accepted (L4 without
 * blocking: it is still non-blocking), the bytes go both ways; a datagram
 * sent through C arrives at U from C's address; N connects to L4.
 *
 * CORRUPT(k), after the SIGTERM: 1 L4 listens again on another port; 2 U
 * loses SO_RCVBUF's size; 3 C is disconnected (AF_UNSPEC); 4 L4 becomes
 * blocking; 5 L4 loses SO_KEEPALIVE.
 */
#include "lib.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

struct sock {
	const char *name;
	int fd;
	struct sockaddr_storage addr;	/* getsockname at the start */
	socklen_t len;
};

static int opt(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);
	if (getsockopt(fd, level, name, &v, &len))
		return -1;
	return v;
}

static void set(int fd, int level, int name, int v)
{
	if (setsockopt(fd, level, name, &v, sizeof(v)))
		fail("setsockopt %d/%d: %m", level, name);
}

static void named(struct sock *s)
{
	s->len = sizeof(s->addr);
	if (getsockname(s->fd, (struct sockaddr *)&s->addr, &s->len))
		fail("%s: getsockname: %m", s->name);
}

static void same_name(struct sock *s)
{
	struct sockaddr_storage now;
	socklen_t len = sizeof(now);
	if (getsockname(s->fd, (struct sockaddr *)&now, &len))
		fail("%s: getsockname: %m", s->name);
	if (len != s->len || memcmp(&now, &s->addr, len))
		fail("%s: its address changed", s->name);
}

static int listener(int family, const char *ip, int backlog)
{
	int fd = socket(family, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_storage a = { 0 };
	socklen_t len;
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&a;
		in->sin_family = AF_INET;
		inet_pton(AF_INET, ip, &in->sin_addr);
		len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a;
		in6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, ip, &in6->sin6_addr);
		set(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
		len = sizeof(*in6);
	}
	if (bind(fd, (struct sockaddr *)&a, len) || listen(fd, backlog)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A client connects to `l` (whose address is `s`), the listener accepts
 * (waiting with poll if it is non-blocking), and 5 bytes go each way. */
static void roundtrip(struct sock *s, int client)
{
	if (client < 0)
		client = socket(s->addr.ss_family, SOCK_STREAM, 0);
	if (connect(client, (struct sockaddr *)&s->addr, s->len))
		fail("%s: connect: %m", s->name);
	struct pollfd p = { s->fd, POLLIN, 0 };
	if (poll(&p, 1, 5000) != 1)
		fail("%s: no connection to accept within 5 s", s->name);
	int conn = accept(s->fd, NULL, NULL);
	if (conn < 0)
		fail("%s: accept: %m", s->name);
	char buf[8] = { 0 };
	if (write(client, "hello", 5) != 5 || read(conn, buf, 5) != 5 || strcmp(buf, "hello"))
		fail("%s: client -> server", s->name);
	if (write(conn, "there", 5) != 5 || read(client, buf, 5) != 5 || strcmp(buf, "there"))
		fail("%s: server -> client", s->name);
	close(conn);
	close(client);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	struct sock l4 = { .name = "L4", .fd = -1 }, l6 = { .name = "L6", .fd = -1 }, u = { .name = "U", .fd = -1 },
		    c = { .name = "C", .fd = -1 }, n = { .name = "N", .fd = -1 };

	l4.fd = socket(AF_INET, SOCK_STREAM, 0);
	set(l4.fd, SOL_SOCKET, SO_REUSEADDR, 1);
	set(l4.fd, SOL_SOCKET, SO_KEEPALIVE, 1);
	set(l4.fd, IPPROTO_TCP, TCP_KEEPIDLE, 77);
	struct sockaddr_in lo = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (bind(l4.fd, (struct sockaddr *)&lo, sizeof(lo)) || listen(l4.fd, 7))
		fail("L4: %m");
	fcntl(l4.fd, F_SETFL, O_NONBLOCK);
	named(&l4);
	l6.fd = listener(AF_INET6, "::1", 3);
	if (l6.fd >= 0)
		named(&l6);
	else
		test_msg("no IPv6 loopback: L6 left out");

	u.fd = socket(AF_INET, SOCK_DGRAM, 0);
	set(u.fd, SOL_SOCKET, SO_RCVBUF, 300000);
	if (bind(u.fd, (struct sockaddr *)&lo, sizeof(lo)))
		fail("U: bind: %m");
	named(&u);
	int rcvbuf = opt(u.fd, SOL_SOCKET, SO_RCVBUF);
	c.fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (connect(c.fd, (struct sockaddr *)&u.addr, u.len))
		fail("C: connect: %m");
	named(&c);
	n.fd = socket(AF_INET, SOCK_STREAM, 0);
	set(n.fd, IPPROTO_TCP, TCP_NODELAY, 1);

	test_ready();
	test_waitsig();

	if (CORRUPT(1)) {
		close(l4.fd);
		l4.fd = socket(AF_INET, SOCK_STREAM, 0);
		bind(l4.fd, (struct sockaddr *)&lo, sizeof(lo));
		listen(l4.fd, 7);
	}
	if (CORRUPT(2))
		set(u.fd, SOL_SOCKET, SO_RCVBUF, 4096);
	if (CORRUPT(3)) {
		struct sockaddr unspec = { .sa_family = AF_UNSPEC };
		connect(c.fd, &unspec, sizeof(unspec));
	}
	if (CORRUPT(4))
		fcntl(l4.fd, F_SETFL, 0);
	if (CORRUPT(5))
		set(l4.fd, SOL_SOCKET, SO_KEEPALIVE, 0);

	same_name(&l4);
	same_name(&u);
	same_name(&c);
	if (l6.fd >= 0)
		same_name(&l6);
	if (!opt(l4.fd, SOL_SOCKET, SO_ACCEPTCONN))
		fail("L4 is not listening");
	if (opt(l4.fd, SOL_SOCKET, SO_REUSEADDR) != 1 || opt(l4.fd, SOL_SOCKET, SO_KEEPALIVE) != 1 ||
	    opt(l4.fd, IPPROTO_TCP, TCP_KEEPIDLE) != 77)
		fail("L4: SO_REUSEADDR %d, SO_KEEPALIVE %d, TCP_KEEPIDLE %d; want 1, 1, 77",
		     opt(l4.fd, SOL_SOCKET, SO_REUSEADDR), opt(l4.fd, SOL_SOCKET, SO_KEEPALIVE),
		     opt(l4.fd, IPPROTO_TCP, TCP_KEEPIDLE));
	if (!(fcntl(l4.fd, F_GETFL) & O_NONBLOCK))
		fail("L4 is blocking again");
	if (l6.fd >= 0 && opt(l6.fd, IPPROTO_IPV6, IPV6_V6ONLY) != 1)
		fail("L6 lost IPV6_V6ONLY");
	if (opt(u.fd, SOL_SOCKET, SO_RCVBUF) != rcvbuf)
		fail("U: SO_RCVBUF %d, was %d", opt(u.fd, SOL_SOCKET, SO_RCVBUF), rcvbuf);
	if (opt(n.fd, IPPROTO_TCP, TCP_NODELAY) != 1)
		fail("N lost TCP_NODELAY");
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	if (getpeername(c.fd, (struct sockaddr *)&peer, &plen) || plen != u.len || memcmp(&peer, &u.addr, plen))
		fail("C is not connected to U any more");

	roundtrip(&l4, -1);
	if (l6.fd >= 0)
		roundtrip(&l6, -1);
	roundtrip(&l4, n.fd);
	if (send(c.fd, "datagram", 8, 0) != 8)
		fail("C: send: %m");
	struct pollfd p = { u.fd, POLLIN, 0 };
	if (poll(&p, 1, 5000) != 1)
		fail("U: no datagram within 5 s");
	char buf[16] = { 0 };
	struct sockaddr_storage from;
	socklen_t flen = sizeof(from);
	if (recvfrom(u.fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen) != 8 || strcmp(buf, "datagram"))
		fail("U: wrong datagram");
	if (flen != c.len || memcmp(&from, &c.addr, flen))
		fail("U: the datagram came from another address than C's");
	pass();
}
