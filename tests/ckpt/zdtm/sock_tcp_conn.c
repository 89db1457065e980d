/*
 * An established TCP connection to a process outside the tree survives,
 * with no byte lost or repeated either way, and bytes in flight at the
 * checkpoint (unread here, unacknowledged there) arrive after it:
 *   R (the tree, a single process) listens on 127.0.0.1; a peer P, made by
 *   a double fork so that it is not of the tree, connects and sends a
 *   stream of 32-bit counters every millisecond, and checks the stream R
 *   sends back the same way; R stops reading 100 ms before READY, so that
 *   its receive queue (and P's send queue) hold bytes at the checkpoint,
 *   and leaves 3000 bytes of its own unread by P.
 * After the restore R reads on: every counter follows the one before
 * (none lost, none twice), 500 more arrive; then R sends "Q" and P answers
 * with its verdict on R's stream ("OK N" or "BAD ...").
 *
 * R keeps listening with SO_REUSEADDR, as a real server does: the
 * restored connection shares the listener's port (it is made after the
 * listener), its SO_REUSEADDR (inherited from the listener) is still set,
 * its buffer sizes are still tuned by the kernel (not locked at what they
 * were at the checkpoint), its segments are as big as before (not the
 * 524 bytes of the default clamp: the kernel sizes them at connect()),
 * and the listener still accepts.
 *
 * CORRUPT(k), after the SIGTERM: 1 R skips 4 bytes of what P sent; 2 R
 * sends one counter twice; 3 R closes the connection and opens a new one
 * to the listener's port (a fresh connection: P sees it end); 4 R clears
 * SO_REUSEADDR on the connection; 5 R sets its receive buffer size (which
 * locks it: the kernel tunes it no more).
 */
#include "lib.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>

static int read_full(int fd, void *buf, size_t len, int ms)
{
	size_t got = 0;
	while (got < len) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, ms) != 1)
			return -1;
		ssize_t n = read(fd, (char *)buf + got, len - got);
		if (n <= 0)
			return -1;
		got += n;
	}
	return 0;
}

static int write_full(int fd, const void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = write(fd, (const char *)buf + done, len - done);
		if (n <= 0)
			return -1;
		done += n;
	}
	return 0;
}

/* The peer: sends counters, checks R's; on "Q" answers with its verdict. */
static void peer(struct sockaddr_in *a)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(s, (struct sockaddr *)a, sizeof(*a)))
		_exit(1);
	fcntl(s, F_SETFL, O_NONBLOCK);
	uint32_t next_out = 0, next_in = 0;
	char bad[128] = "";
	char in[4096];
	size_t have = 0;
	unsigned char out[4];
	size_t out_at = 4;	/* bytes of `out` written (a write may be partial) */
	double deadline = test_now() + 60;
	while (test_now() < deadline) {
		if (out_at == 4) {
			memcpy(out, &next_out, 4);
			out_at = 0;
		}
		ssize_t w = write(s, out + out_at, 4 - out_at);
		if (w > 0 && (out_at += w) == 4)
			next_out++;
		ssize_t n = read(s, in + have, sizeof(in) - have);
		if (n == 0) {
			break;	/* R's end went away: the verdict is lost with it */
		}
		if (n > 0)
			have += n;
		size_t at = 0;
		for (; have - at >= 4; at += 4) {
			if (!memcmp(in + at, "Q\n\n\n", 4)) {
				char msg[160];
				snprintf(msg, sizeof(msg), "%s %u\n", bad[0] ? bad : "OK", next_in);
				fcntl(s, F_SETFL, 0);
				if (out_at < 4)	/* the counter under way first */
					write_full(s, out + out_at, 4 - out_at);
				write_full(s, msg, strlen(msg));
				sleep(5);
				_exit(0);
			}
			uint32_t got;
			memcpy(&got, in + at, 4);
			if (got != next_in && !bad[0])
				snprintf(bad, sizeof(bad), "BAD: counter %u where %u was due", got, next_in);
			next_in = got + 1;
		}
		memmove(in, in + at, have - at);
		have -= at;
		usleep(1000);
	}
	_exit(1);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int one = 1;
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) || getsockname(l, (struct sockaddr *)&a, &alen))
		fail("listen: %m");
	pid_t mid = fork();
	if (mid == 0) {
		if (fork() == 0) {
			setsid();	/* not in R's session or group either */
			close(l);	/* R's listener is R's alone */
			peer(&a);
		}
		_exit(0);
	}
	waitpid(mid, NULL, 0);	/* the peer is PID 1's (or a subreaper's) now, not ours */
	int s = accept(l, NULL, NULL);
	if (s < 0)
		fail("accept: %m");
	/* Read the peer's stream for a while, and send ours. */
	uint32_t next_in = 0, next_out = 0;
	double until = test_now() + 0.4;
	while (test_now() < until) {
		uint32_t v;
		if (read_full(s, &v, 4, 2000))
			fail("the peer's stream stopped before the checkpoint");
		if (v != next_in)
			fail("before the checkpoint: counter %u where %u was due", v, next_in);
		next_in++;
		if (write_full(s, &next_out, 4))
			fail("write: %m");
		next_out++;
	}
	/* Bytes in flight both ways: ours unread by it, its unread by us. */
	for (int i = 0; i < 750; i++, next_out++)
		write_full(s, &next_out, 4);
	usleep(100000);
	int mss = 0;
	socklen_t mlen = sizeof(mss);
	getsockopt(s, IPPROTO_TCP, TCP_MAXSEG, &mss, &mlen);
	test_msg("counters: %u read, %u sent before READY; segments of %d bytes", next_in, next_out, mss);
	test_ready();
	test_waitsig();

	if (CORRUPT(1)) {
		uint32_t skip;
		read_full(s, &skip, 4, 5000);
	}
	if (CORRUPT(2)) {
		uint32_t again = next_out - 1;
		write_full(s, &again, 4);
	}
	if (CORRUPT(3)) {
		close(s);
		s = socket(AF_INET, SOCK_STREAM, 0);
		connect(s, (struct sockaddr *)&a, sizeof(a));
	}
	if (CORRUPT(4)) {
		int zero = 0;
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &zero, sizeof(zero));
	}
	if (CORRUPT(5)) {
		int size = 1 << 16;
		setsockopt(s, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	}
	/* It never set a buffer size: the kernel still tunes both. */
	int locks = -1;
	socklen_t llen = sizeof(locks);
	if (getsockopt(s, SOL_SOCKET, SO_BUF_LOCK, &locks, &llen) || locks != 0)
		fail("the connection's buffer sizes are locked (SO_BUF_LOCK %d): no more autotuning", locks);
	/* Its segments as big as before (the kernel takes no clamp above 32767
	 * at a restore: loopback's 65483 comes back as 32755), not the
	 * default's 524. */
	int mss_now = 0;
	mlen = sizeof(mss_now);
	if (getsockopt(s, IPPROTO_TCP, TCP_MAXSEG, &mss_now, &mlen) || mss_now < (mss < 32755 ? mss : 32755))
		fail("its segments are of %d bytes, they were of %d", mss_now, mss);
	int reuse = 0;
	socklen_t rlen = sizeof(reuse);
	if (getsockopt(s, SOL_SOCKET, SO_REUSEADDR, &reuse, &rlen) || !reuse)
		fail("the connection lost SO_REUSEADDR (it had it from its listener)");
	/* The listener still takes clients. */
	int c = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(c, (struct sockaddr *)&a, sizeof(a)))
		fail("connect to the listener after the restore: %m");
	int c2 = accept(l, NULL, NULL);
	if (c2 < 0)
		fail("accept after the restore: %m");
	close(c2);
	close(c);
	for (int i = 0; i < 500; i++) {
		uint32_t v;
		if (read_full(s, &v, 4, 10000))
			fail("after the restore: the peer's stream stopped after %u counters", next_in);
		if (v != next_in)
			fail("after the restore: counter %u where %u was due", v, next_in);
		next_in++;
		if (write_full(s, &next_out, 4))
			fail("write after the restore: %m");
		next_out++;
	}
	if (write_full(s, "Q\n\n\n", 4))
		fail("write Q: %m");
	/* Drain its counters up to the verdict. */
	char buf[256];
	size_t have = 0;
	double end = test_now() + 10;
	while (test_now() < end && !memchr(buf, '\n', have)) {
		uint32_t v;
		struct pollfd p = { s, POLLIN, 0 };
		if (poll(&p, 1, 1000) != 1)
			continue;
		if (have == 0) {
			if (read_full(s, &v, 4, 1000))
				break;
			if (v == next_in) {
				next_in++;
				continue;
			}
			memcpy(buf, &v, 4);
			have = 4;
			continue;
		}
		ssize_t n = read(s, buf + have, sizeof(buf) - 1 - have);
		if (n <= 0)
			break;
		have += n;
	}
	buf[have] = 0;
	if (strncmp(buf, "OK ", 3))
		fail("the peer's verdict on our stream: '%.100s'", have ? buf : "(none)");
	test_msg("peer: %s", buf);
	pass();
}
