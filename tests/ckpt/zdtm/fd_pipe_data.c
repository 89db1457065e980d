/*
 * Pipes with data in them, both ends held by one process: a pipe with 10 KB
 * buffered (read end O_NONBLOCK), and a pipe resized to 256 KiB with 100 KB
 * buffered. After the restore: same buffered bytes (FIONREAD and content),
 * same capacities, same flags on each end, and each pipe still connects its
 * two fds. (Pipes with one end closed: fd_pipe_half_closed.)
 */
#include "lib.h"

#include <fcntl.h>
#include <sys/ioctl.h>

#define SMALL 10240
#define BIG (100 * 1024)
#define BIG_CAP (256 * 1024)

static void fill_pipe(int wfd, size_t len, uint64_t seed)
{
	unsigned char *buf = malloc(len);
	test_fill(buf, len, seed);
	size_t done = 0;
	while (done < len) {
		ssize_t n = write(wfd, buf + done, len - done);
		if (n <= 0)
			fail("write to pipe: %m");
		done += n;
	}
	free(buf);
}

static void drain_check(int rfd, size_t len, uint64_t seed, const char *what)
{
	int avail = -1;
	if (ioctl(rfd, FIONREAD, &avail) || avail != (int)len)
		fail("%s: %d bytes buffered, expected %zu", what, avail, len);
	unsigned char *buf = malloc(len);
	size_t done = 0;
	while (done < len) {
		ssize_t n = read(rfd, buf + done, len - done);
		if (n <= 0)
			fail("%s: read: %s after %zu bytes", what, n ? strerror(errno) : "EOF", done);
		done += n;
	}
	long off = test_check_fill(buf, len, seed);
	if (off >= 0)
		fail("%s: buffered data differs at offset %ld", what, off);
	free(buf);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	int small[2], big[2];
	if (pipe(small) || pipe(big))
		fail("pipe: %m");
	if (fcntl(big[1], F_SETPIPE_SZ, BIG_CAP) < 0)
		fail("F_SETPIPE_SZ: %m");
	int small_cap = fcntl(small[0], F_GETPIPE_SZ);
	fill_pipe(small[1], SMALL, 0x5a11);
	fill_pipe(big[1], BIG, 0xb16);
	fcntl(small[0], F_SETFL, O_NONBLOCK);

	test_ready();
	test_waitsig();

	if (CORRUPT(1)) {
		char c;
		read(big[0], &c, 1);
		write(big[1], &c, 1);
	}
	if (CORRUPT(2))
		fcntl(big[0], F_SETPIPE_SZ, 128 * 1024);
	if (CORRUPT(3)) {	/* the small pipe's ends now belong to two pipes */
		int p[2];
		pipe(p);
		dup2(p[1], small[1]);
		close(p[0]);
		close(p[1]);
	}

	if (fcntl(small[0], F_GETPIPE_SZ) != small_cap)
		fail("small pipe capacity %d, was %d", fcntl(small[0], F_GETPIPE_SZ), small_cap);
	if (fcntl(big[0], F_GETPIPE_SZ) != BIG_CAP)
		fail("resized pipe capacity %d, expected %d", fcntl(big[0], F_GETPIPE_SZ), BIG_CAP);
	if (!(fcntl(small[0], F_GETFL) & O_NONBLOCK) || (fcntl(small[1], F_GETFL) & O_NONBLOCK))
		fail("O_NONBLOCK moved between the ends of the small pipe");
	drain_check(small[0], SMALL, 0x5a11, "small pipe");
	drain_check(big[0], BIG, 0xb16, "256 KiB pipe");
	char c;
	if (read(small[0], &c, 1) != -1 || errno != EAGAIN)
		fail("empty O_NONBLOCK pipe: read did not fail with EAGAIN");
	if (write(small[1], "ping", 4) != 4 || read(small[0], &c, 1) != 1 || c != 'p')
		fail("the small pipe no longer connects its two fds");
	if (write(big[1], "pong", 4) != 4 || read(big[0], &c, 1) != 1 || c != 'p')
		fail("the 256 KiB pipe no longer connects its two fds");
	pass();
}
