/*
 * Unnamed UNIX sockets (socketpairs) keep their pairing, what waits in
 * their queues, their shutdowns and options:
 *   a stream pair between the root and a forked child, with 200,000 bytes
 *     waiting at the child's end (sent in several writes); after the
 *     restore the child reads them, then a ping and a pong cross it;
 *   a datagram pair in the root, 5 datagrams of 1, 100, 5000, 70000 and
 *     7 bytes waiting at one end, read back one by one with their sizes;
 *   a seqpacket pair with 3 records waiting and the sender shut down for
 *     writing: the records, then the end (0);
 *   a stream pair whose other end was closed after sending 3,000 bytes in
 *     writes of 1,000: those bytes, then the end;
 *   O_NONBLOCK on one end, SO_RCVBUF and SO_PASSCRED on another,
 *   SO_PEEK_OFF on a third.
 *
 * CORRUPT(k), after the SIGTERM: 1 the root reads one byte of its queue
 * early; 2 one datagram is read early; 3 SO_RCVBUF changes; 4 O_NONBLOCK
 * is cleared; 5 a fourth record is sent before the seqpacket check (no
 * end where it should be); 6 the child does not answer the ping.
 */
#include "lib.h"

#include <fcntl.h>
#include <sys/socket.h>

#ifndef SO_PEEK_OFF
#define SO_PEEK_OFF 42
#endif

#define TO_CHILD 200000
#define TO_ROOT 3000
#define RCVBUF 150000

static int stream[2], dgram[2], seq[2], orphan;
static const size_t dgram_sizes[] = {1, 100, 5000, 70000, 7};

static void fill(unsigned char *buf, size_t n, unsigned seed)
{
	test_fill(buf, n, seed);
}

static void send_all(int fd, const unsigned char *buf, size_t n, size_t chunk)
{
	for (size_t done = 0; done < n;) {
		size_t len = n - done < chunk ? n - done : chunk;
		ssize_t w = send(fd, buf + done, len, 0);
		if (w < 0)
			fail("send: %m");
		done += (size_t)w;
	}
}

/* Reads exactly n bytes (up to 5 s), then checks them against seed. */
static void recv_check(int fd, size_t n, unsigned seed, const char *what)
{
	unsigned char *got = malloc(n), *want = malloc(n);
	double end = test_now() + 5;
	size_t done = 0;
	while (done < n) {
		ssize_t r = recv(fd, got + done, n - done, MSG_DONTWAIT);
		if (r > 0)
			done += (size_t)r;
		else if (r == 0)
			fail("%s: the end after %zu of %zu bytes", what, done, n);
		else if (errno != EAGAIN || test_now() > end)
			fail("%s: %zu of %zu bytes (%m)", what, done, n);
		else
			usleep(1000);
	}
	fill(want, n, seed);
	for (size_t i = 0; i < n; i++)
		if (got[i] != want[i])
			fail("%s differs at byte %zu", what, i);
	free(got);
	free(want);
}

static void expect_end(int fd, const char *what)
{
	char c;
	ssize_t r = recv(fd, &c, 1, MSG_DONTWAIT);
	if (r != 0)
		fail("%s: want the end, got %zd (%m)", what, r);
}

static void child(void)
{
	close(stream[0]);
	test_child_ready();
	test_waitsig();
	recv_check(stream[1], TO_CHILD, 0xc41d, "child's queue");
	char ping[5] = {0};
	double end = test_now() + 5;
	while (recv(stream[1], ping, 4, MSG_DONTWAIT) != 4)
		if (test_now() > end)
			fail("child: no ping");
		else
			usleep(1000);
	if (strcmp(ping, "ping"))
		fail("child: got '%s', want ping", ping);
	if (!CORRUPT(6) && send(stream[1], "pong", 4, 0) != 4)
		fail("child: send pong: %m");
	pass();
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, stream) || socketpair(AF_UNIX, SOCK_DGRAM, 0, dgram) ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET, 0, seq))
		fail("socketpair: %m");
	int big = 1 << 20;
	setsockopt(stream[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	setsockopt(dgram[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	unsigned char *buf = malloc(TO_CHILD);

	fill(buf, TO_CHILD, 0xc41d);
	send_all(stream[0], buf, TO_CHILD, 30000);
	if (test_fork() == 0)
		child();
	close(stream[1]);
	test_wait_children_ready();
	fill(buf, TO_ROOT, 0x2007);
	int back[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, back))
		fail("socketpair: %m");
	send_all(back[1], buf, TO_ROOT, 1000);
	close(back[1]);  /* `back[0]` has 3,000 bytes waiting, then the end */
	orphan = back[0];

	for (unsigned i = 0; i < 5; i++) {
		fill(buf, dgram_sizes[i], 0xd0 + i);
		if (send(dgram[1], buf, dgram_sizes[i], 0) != (ssize_t)dgram_sizes[i])
			fail("send datagram %u: %m", i);
	}
	for (unsigned i = 0; i < 3; i++) {
		fill(buf, 10 + i, 0x5e0 + i);
		if (send(seq[1], buf, 10 + i, 0) != (ssize_t)(10 + i))
			fail("send record %u: %m", i);
	}
	if (shutdown(seq[1], SHUT_WR))
		fail("shutdown: %m");

	int rcvbuf = RCVBUF, one = 1, zero = 0;
	if (fcntl(dgram[0], F_SETFL, O_NONBLOCK) || setsockopt(seq[0], SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) ||
	    setsockopt(seq[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) ||
	    setsockopt(stream[0], SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)))
		fail("options: %m");
	socklen_t len = sizeof(rcvbuf);
	getsockopt(seq[0], SOL_SOCKET, SO_RCVBUF, &rcvbuf, &len);

	test_ready();
	test_waitsig();

	if (CORRUPT(1)) {
		char c;
		(void)!recv(orphan, &c, 1, 0);
	}
	if (CORRUPT(2))
		(void)!recv(dgram[0], buf, 1 << 20, 0);
	if (CORRUPT(3)) {
		int other = RCVBUF / 2;
		setsockopt(seq[0], SOL_SOCKET, SO_RCVBUF, &other, sizeof(other));
	}
	if (CORRUPT(4))
		fcntl(dgram[0], F_SETFL, 0);

	recv_check(orphan, TO_ROOT, 0x2007, "the queue of the pair whose other end was closed");
	expect_end(orphan, "the pair whose other end was closed");

	if (!(fcntl(dgram[0], F_GETFL) & O_NONBLOCK))
		fail("O_NONBLOCK lost");
	for (unsigned i = 0; i < 5; i++) {
		unsigned char *want = malloc(dgram_sizes[i]);
		fill(want, dgram_sizes[i], 0xd0 + i);
		ssize_t r = recv(dgram[0], buf, TO_CHILD, MSG_DONTWAIT);
		if (r != (ssize_t)dgram_sizes[i] || memcmp(buf, want, dgram_sizes[i]))
			fail("datagram %u: %zd bytes, want %zu (or its bytes differ)", i, r, dgram_sizes[i]);
		free(want);
	}
	if (recv(dgram[0], buf, 16, MSG_DONTWAIT) >= 0 || errno != EAGAIN)
		fail("a sixth datagram");

	int now = 0, pass_now = 0, peek = -1;
	len = sizeof(now);
	getsockopt(seq[0], SOL_SOCKET, SO_RCVBUF, &now, &len);
	len = sizeof(pass_now);
	getsockopt(seq[0], SOL_SOCKET, SO_PASSCRED, &pass_now, &len);
	len = sizeof(peek);
	getsockopt(stream[0], SOL_SOCKET, SO_PEEK_OFF, &peek, &len);
	if (now != rcvbuf || !pass_now || peek != 0)
		fail("options: SO_RCVBUF %d (want %d), SO_PASSCRED %d, SO_PEEK_OFF %d (want 0)", now, rcvbuf, pass_now, peek);

	if (CORRUPT(5)) {
		int extra[2];
		socketpair(AF_UNIX, SOCK_SEQPACKET, 0, extra);
		send(extra[1], "x", 1, 0);
		dup2(extra[0], seq[0]);
		fill(buf, 10, 0x5e0);
		send(extra[1], buf, 10, 0);
	}
	for (unsigned i = 0; i < 3; i++) {
		unsigned char want[16];
		fill(want, 10 + i, 0x5e0 + i);
		ssize_t r = recv(seq[0], buf, 64, MSG_DONTWAIT);
		if (r != (ssize_t)(10 + i) || memcmp(buf, want, 10 + i))
			fail("record %u: %zd bytes, want %u (or its bytes differ)", i, r, 10 + i);
	}
	expect_end(seq[0], "the seqpacket pair shut down for writing");

	if (send(stream[0], "ping", 4, 0) != 4)
		fail("send ping: %m");
	char pong[5] = {0};
	double end = test_now() + 5;
	while (recv(stream[0], pong, 4, MSG_DONTWAIT) != 4)
		if (test_now() > end)
			fail("no pong from the child");
		else
			usleep(1000);
	if (strcmp(pong, "pong"))
		fail("got '%s', want pong", pong);
	pass();
}
