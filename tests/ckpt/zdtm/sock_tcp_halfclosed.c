/*
 * TCP connections being closed that the process still holds survive as
 * they were: what is queued arrives, reads end where they ended, writes go
 * on where they may, and each side sees the other's close once.
 *   A (both ends in R, on 127.0.0.1): the client wrote "request" and shut
 *   down its side (FIN_WAIT2); the server has not read it (CLOSE_WAIT).
 *   After: the server reads "request" then EOF, answers "response", which
 *   the client reads; the client's writes fail (EPIPE); the server's close
 *   reaches the client as EOF.
 *   B (both ends in R): the server wrote a pattern until its peer's window
 *   and its own buffer were full (bytes unacknowledged and never sent),
 *   then shut down its side (FIN_WAIT1, the FIN queued behind them).
 *   After: the client reads every byte of the pattern, then EOF; the
 *   server still reads what the client sends.
 *   C (both ends in R): established, the server shut down its reading
 *   (SHUT_RD): after, its reads end at once, and its writes still arrive.
 *   D (a peer P outside the tree, made by a double fork): on one
 *   connection P wrote "from P" and shut down its side (R in CLOSE_WAIT);
 *   on another R wrote "R done" and shut down its side (R in FIN_WAIT2, P
 *   read it and its EOF). After: R reads "from P" then EOF, answers
 *   "reply" and closes; P reads "reply" then EOF, then writes "late" on the
 *   other connection and closes it; R reads "late" then EOF; P sends its
 *   verdict on a third connection.
 *
 * CORRUPT(k), after the SIGTERM: 1 R reads a byte of A's request early;
 * 2 R reads a byte of B's pattern early; 3 R sends C's server a byte
 * before the check (its reads do not end at once); 4 R answers P "reply!".
 */
#include "lib.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <linux/sockios.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

static struct sockaddr_in at;

static int tcp_state(int s)
{
	struct tcp_info i;
	socklen_t len = sizeof(i);
	if (getsockopt(s, IPPROTO_TCP, TCP_INFO, &i, &len))
		return -1;
	return i.tcpi_state;
}

static void wait_state(int s, int state, const char *what)
{
	double until = test_now() + 5;
	while (tcp_state(s) != state) {
		if (test_now() > until)
			fail("%s: state %d, not %d, after 5 s", what, tcp_state(s), state);
		usleep(1000);
	}
}

static int dial(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&at, sizeof(at)))
		return -1;
	return s;
}

/* Reads until EOF within 5 s; the bytes read (at most len), or -1. */
static ssize_t read_to_eof(int fd, char *buf, size_t len)
{
	size_t got = 0;
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 5000) != 1)
			return -1;
		char scratch[4096];
		ssize_t n = read(fd, got < len ? buf + got : scratch, got < len ? len - got : sizeof(scratch));
		if (n < 0)
			return -1;
		if (n == 0)
			return (ssize_t)got;
		got += n;
	}
}

static unsigned char pattern(size_t i)
{
	return (unsigned char)(i * 7 % 251);
}

/* P, outside the tree. */
static void peer(void)
{
	char buf[64] = { 0 };
	const char *bad = NULL;
	int one = dial(), two = dial();
	if (one < 0 || two < 0)
		_exit(1);
	if (write(one, "from P", 6) != 6 || shutdown(one, SHUT_WR))
		_exit(1);
	ssize_t n = read_to_eof(two, buf, sizeof(buf) - 1);
	if (n != 6 || memcmp(buf, "R done", 6))
		_exit(1);	/* before the checkpoint: R sees no READY */
	/* R is checkpointed and restored meanwhile. */
	memset(buf, 0, sizeof(buf));
	for (double until = test_now() + 60; test_now() < until;) {
		struct pollfd p = { one, POLLIN, 0 };
		if (poll(&p, 1, 1000) == 1)
			break;
	}
	n = read_to_eof(one, buf, sizeof(buf) - 1);
	if (n != 5 || memcmp(buf, "reply", 5))
		bad = n < 0 ? "BAD: no EOF after the reply" : "BAD: the reply";
	if (write(two, "late", 4) != 4)
		bad = "BAD: write late";
	close(two);
	close(one);
	int three = dial();
	const char *verdict = bad ? bad : "OK";
	if (three >= 0)
		(void)!write(three, verdict, strlen(verdict));
	close(three);
	_exit(0);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	int l = socket(AF_INET, SOCK_STREAM, 0);
	at.sin_family = AF_INET;
	at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t alen = sizeof(at);
	if (bind(l, (struct sockaddr *)&at, sizeof(at)) || listen(l, 8) || getsockname(l, (struct sockaddr *)&at, &alen))
		fail("listen: %m");

	/* D first: P, forked, holds none of the others. */
	pid_t mid = fork();
	if (mid == 0) {
		if (fork() == 0) {
			setsid();
			close(l);
			peer();
		}
		_exit(0);
	}
	waitpid(mid, NULL, 0);
	int d1 = accept(l, NULL, NULL), d2 = accept(l, NULL, NULL);
	if (d1 < 0 || d2 < 0)
		fail("D: accept: %m");
	if (write(d2, "R done", 6) != 6 || shutdown(d2, SHUT_WR))
		fail("D: write: %m");
	wait_state(d1, TCP_CLOSE_WAIT, "D's first");
	wait_state(d2, TCP_FIN_WAIT2, "D's second");

	/* A */
	int ac = dial(), as = accept(l, NULL, NULL);
	if (ac < 0 || as < 0)
		fail("A: connect: %m");
	if (write(ac, "request", 7) != 7 || shutdown(ac, SHUT_WR))
		fail("A: write: %m");
	wait_state(as, TCP_CLOSE_WAIT, "A's server");
	wait_state(ac, TCP_FIN_WAIT2, "A's client");

	/* B: a small receive buffer on the client, made before connect. */
	int bc = socket(AF_INET, SOCK_STREAM, 0);
	int small = 4096;
	setsockopt(bc, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	if (connect(bc, (struct sockaddr *)&at, sizeof(at)))
		fail("B: connect: %m");
	int bs = accept(l, NULL, NULL);
	if (bs < 0)
		fail("B: accept: %m");
	setsockopt(bs, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	fcntl(bs, F_SETFL, O_NONBLOCK);
	size_t sent = 0;
	for (double quiet = test_now() + 0.3; test_now() < quiet;) {
		unsigned char chunk[512];
		for (size_t i = 0; i < sizeof(chunk); i++)
			chunk[i] = pattern(sent + i);
		ssize_t w = write(bs, chunk, sizeof(chunk));
		if (w > 0) {
			sent += w;
			quiet = test_now() + 0.3;	/* until the window stays shut */
		} else {
			usleep(5000);
		}
	}
	fcntl(bs, F_SETFL, 0);
	int unsent = 0;
	ioctl(bs, SIOCOUTQNSD, &unsent);
	if (shutdown(bs, SHUT_WR))
		fail("B: shutdown: %m");
	if (tcp_state(bs) != TCP_FIN_WAIT1)
		fail("B's server: state %d, not FIN_WAIT1", tcp_state(bs));
	test_msg("B: %zu bytes written, %d never sent, then the FIN", sent, unsent);

	/* C */
	int cc = dial(), cs = accept(l, NULL, NULL);
	if (cc < 0 || cs < 0)
		fail("C: connect: %m");
	if (shutdown(cs, SHUT_RD))
		fail("C: shutdown: %m");

	test_ready();
	test_waitsig();

	if (CORRUPT(1)) {
		char c;
		(void)!read(as, &c, 1);
	}
	if (CORRUPT(2)) {
		char c;
		(void)!read(bc, &c, 1);
	}
	if (CORRUPT(3)) {
		(void)!write(cc, "x", 1);
		usleep(100000);
	}

	/* A */
	test_read_exact(as, "request", "A: the request");
	char buf[64] = { 0 };
	ssize_t n;
	if (read_to_eof(as, buf, sizeof(buf)) != 0)
		fail("A: the server's reads do not end after the request");
	if (write(as, "response", 8) != 8)
		fail("A: the server cannot answer: %m");
	test_read_exact(ac, "response", "A: the response");
	if (write(ac, "more", 4) >= 0 || errno != EPIPE)
		fail("A: the client, shut down, may write again (%m)");
	close(as);
	n = read_to_eof(ac, buf, sizeof(buf));
	if (n != 0)
		fail("A: the server's close did not reach the client (%zd, %m, state %d)", n, tcp_state(ac));

	/* B */
	static unsigned char got[1 << 20];
	n = read_to_eof(bc, (char *)got, sizeof(got));
	if (n < 0)
		fail("B: no EOF after the pattern");
	if ((size_t)n != sent)
		fail("B: %zd bytes of the pattern arrived, %zu were written", n, sent);
	for (size_t i = 0; i < sent; i++)
		if (got[i] != pattern(i))
			fail("B: byte %zu of the pattern is %u, not %u", i, got[i], pattern(i));
	if (write(bc, "ack", 3) != 3)
		fail("B: write: %m");
	test_read_exact(bs, "ack", "B: the server's reading side");

	/* C */
	struct pollfd p = { cs, POLLIN, 0 };
	if (poll(&p, 1, 0) != 1 || read(cs, buf, sizeof(buf)) != 0)
		fail("C: the reads the server shut do not end at once");
	if (write(cs, "still", 5) != 5)
		fail("C: write: %m");
	test_read_exact(cc, "still", "C: the server's writes");

	/* D */
	test_read_exact(d1, "from P", "D: what P sent before its shutdown");
	if (read_to_eof(d1, buf, sizeof(buf)) != 0)
		fail("D: R's reads from P do not end");
	const char *reply = CORRUPT(4) ? "reply!" : "reply";
	if (write(d1, reply, strlen(reply)) != (ssize_t)strlen(reply))
		fail("D: write: %m");
	close(d1);
	test_read_exact(d2, "late", "D: what P sent after the restore");
	if (read_to_eof(d2, buf, sizeof(buf)) != 0)
		fail("D: P's close did not reach R");
	int v = accept(l, NULL, NULL);
	memset(buf, 0, sizeof(buf));
	if (v < 0 || read_to_eof(v, buf, sizeof(buf) - 1) < 0)
		fail("D: no verdict from P");
	if (strcmp(buf, "OK"))
		fail("D: P says %s", buf);
	pass();
}
