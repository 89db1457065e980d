/*
 * Pipes with one end closed: a pipe holding 3000 bytes whose write end was
 * closed (after the restore the reader gets the bytes, then EOF: no writer
 * may have appeared), and a pipe whose read end was closed (writing gives
 * EPIPE, with SIGPIPE ignored). Neither pipe leads outside the process:
 * nobody holds the other end.
 */
#include "lib.h"

#include <fcntl.h>
#include <sys/ioctl.h>

#define LEN 3000

int main(int argc, char **argv)
{
	test_init(argc, argv);
	int orphan[2], widow[2];
	if (pipe(orphan) || pipe(widow))
		fail("pipe: %m");
	signal(SIGPIPE, SIG_IGN);
	unsigned char buf[LEN];
	test_fill(buf, LEN, 0x0f);
	if (write(orphan[1], buf, LEN) != LEN)
		fail("write: %m");
	close(orphan[1]);
	close(widow[0]);

	test_ready();
	test_waitsig();

	if (CORRUPT(1)) {	/* a writer appears */
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", orphan[0]);
		int w = open(path, O_WRONLY);
		write(w, "x", 1);
	}
	if (CORRUPT(2)) {	/* a reader appears */
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", widow[1]);
		open(path, O_RDONLY | O_NONBLOCK);
	}

	int avail = -1;
	if (ioctl(orphan[0], FIONREAD, &avail) || avail != LEN)
		fail("pipe without writer: %d bytes buffered, expected %d", avail, LEN);
	unsigned char got[LEN];
	size_t done = 0;
	while (done < LEN) {
		ssize_t n = read(orphan[0], got + done, LEN - done);
		if (n <= 0)
			fail("pipe without writer: %s after %zu bytes", n ? strerror(errno) : "EOF", done);
		done += n;
	}
	if (memcmp(got, buf, LEN))
		fail("pipe without writer: data differs");
	char c;
	ssize_t n = read(orphan[0], &c, 1);
	if (n != 0)
		fail("pipe without writer: read after the data returned %zd, expected EOF", n);
	if (write(widow[1], "x", 1) != -1 || errno != EPIPE)
		fail("pipe without reader: write did not fail with EPIPE");
	pass();
}
