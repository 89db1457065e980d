/*
 * File descriptors in flight (SCM_RIGHTS sent, not received yet) in UNIX
 * sockets come back with the bytes they were sent with, as the same files:
 *   a stream pair holds "before" (plain), then "with-fds" sent with three
 *     fds: a pipe's write end (its read end stays in the process), a
 *     regular file at offset 2 (its only fd is the one in flight) and one
 *     end of a datagram pair (in flight only), then "after";
 *   in that datagram pair wait "X" with an eventfd (counter 7, in flight
 *     only), an empty datagram, and "Y".
 * After the restore: "before" read with read() (no room for fds: any that
 * came with it would be lost), then a read brings "with-fds" and the three
 * fds, then "after"; "ping" written to the
 * pipe end arrives at the read end the process kept; the file reads "llo"
 * from its offset; the datagram socket received gives "X" with the eventfd
 * (7), the empty datagram, then "Y".
 *
 * CORRUPT(k), after the SIGTERM: 1 the pipe end received is replaced by a
 * new pipe's; 2 the file is rewound; 3 read() takes "before" and part of
 * "with-fds" (its fds are lost with it); 4 the eventfd is read before its
 * check.
 */
#include "lib.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

static void send_fds(int s, const char *data, size_t len, const int *fds, int n)
{
	char control[CMSG_SPACE(3 * sizeof(int))] = { 0 };
	struct iovec iov = { (void *)data, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (n > 0) {
		mh.msg_control = control;
		mh.msg_controllen = CMSG_SPACE(n * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(n * sizeof(int));
		memcpy(CMSG_DATA(c), fds, n * sizeof(int));
	}
	if (sendmsg(s, &mh, 0) != (ssize_t)len)
		fail("sendmsg: %m");
}

/* Receives up to `len` bytes; returns how many, the fds in fds[] (*n). */
static ssize_t recv_fds(int s, char *buf, size_t len, int *fds, int *n)
{
	char control[CMSG_SPACE(8 * sizeof(int))];
	struct iovec iov = { buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
			     .msg_controllen = sizeof(control) };
	ssize_t got = recvmsg(s, &mh, MSG_DONTWAIT);
	*n = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); got >= 0 && c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		*n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		memcpy(fds, CMSG_DATA(c), *n * sizeof(int));
	}
	return got;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	int sv[2], dv[2], p[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || socketpair(AF_UNIX, SOCK_DGRAM, 0, dv) || pipe(p))
		fail("socketpair/pipe: %m");
	char path[] = "/tmp/zdtm-scm.XXXXXX";
	int f = mkstemp(path);
	if (f < 0 || write(f, "hello", 5) != 5 || lseek(f, 2, SEEK_SET) != 2)
		fail("tmp file: %m");
	unlink(path);	/* in flight only, and deleted: its contents come from the image */
	int ev = eventfd(7, EFD_NONBLOCK);
	if (ev < 0)
		fail("eventfd: %m");

	send_fds(dv[0], "X", 1, &ev, 1);
	send_fds(dv[0], "", 0, NULL, 0);
	send_fds(dv[0], "Y", 1, NULL, 0);
	close(ev);
	send_fds(sv[1], "before", 6, NULL, 0);
	int three[3] = { p[1], f, dv[1] };
	send_fds(sv[1], "with-fds", 8, three, 3);
	send_fds(sv[1], "after", 5, NULL, 0);
	close(p[1]);
	close(f);
	close(dv[1]);

	test_ready();
	test_waitsig();

	char buf[64];
	int fds[8], n = 0;
	/* "before" read with read(), which has no room for fds: any that came
	 * with it would be lost. */
	ssize_t first = read(sv[0], buf, CORRUPT(3) ? 10 : 6);
	if (first != 6 && !CORRUPT(3))
		fail("the stream's first bytes: %zd", first);
	/* A read stops after the bytes that came with fds. */
	ssize_t got = recv_fds(sv[0], buf, sizeof(buf), fds, &n);
	if (got != 8 || memcmp(buf, "with-fds", 8))
		fail("the stream's next bytes (%zd): '%.*s'", got, (int)(got > 0 ? got : 0), buf);
	if (n != 3)
		fail("%d fd(s) came with \"with-fds\", not 3", n);
	int none[8], k = 0;
	got = recv_fds(sv[0], buf, sizeof(buf), none, &k);
	if (got != 5 || memcmp(buf, "after", 5) || k != 0)
		fail("the stream's last bytes (%zd, %d fds)", got, k);
	int pw = fds[0], file = fds[1], dsock = fds[2];
	if (CORRUPT(1)) {
		int q[2];
		if (pipe(q) == 0)
			pw = q[1];
	}
	if (write(pw, "ping", 4) != 4)
		fail("write to the pipe end received: %m");
	char in[8] = { 0 };
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	if (read(p[0], in, sizeof(in)) != 4 || memcmp(in, "ping", 4))
		fail("the pipe end received is not the process's pipe's");
	if (CORRUPT(2))
		lseek(file, 0, SEEK_SET);
	char text[8] = { 0 };
	if (read(file, text, sizeof(text)) != 3 || memcmp(text, "llo", 3))
		fail("the file received reads '%s', not \"llo\" (its offset was 2)", text);

	int evs[8], m = 0;
	got = recv_fds(dsock, buf, sizeof(buf), evs, &m);
	if (got != 1 || buf[0] != 'X' || m != 1)
		fail("the datagram socket received: first datagram %zd bytes, %d fd(s)", got, m);
	uint64_t v = 0;
	if (CORRUPT(4))
		(void)!read(evs[0], &v, sizeof(v));
	v = 0;
	if (read(evs[0], &v, sizeof(v)) != sizeof(v) || v != 7)
		fail("the eventfd in flight does not read 7 (%llu: %m)", (unsigned long long)v);
	got = recv_fds(dsock, buf, sizeof(buf), evs, &m);
	if (got != 0)
		fail("the empty datagram is %zd bytes", got);
	got = recv_fds(dsock, buf, sizeof(buf), evs, &m);
	if (got != 1 || buf[0] != 'Y')
		fail("the last datagram: %zd bytes", got);
	pass();
}
