/*
 * The root is blocked in read() on a pipe from its child when it is
 * checkpointed. The child writes only after it gets SIGTERM (forwarded by the
 * root's handler), so the read must be resumed after the restore (SA_RESTART),
 * return nothing before the SIGTERM, and then deliver the child's bytes
 * intact, followed by EOF when the child exits.
 */
#include "lib.h"

#define LEN 3000

int main(int argc, char **argv)
{
	test_init(argc, argv);
	int p[2];
	if (pipe(p))
		fail("pipe: %m");

	pid_t child = test_fork();
	if (child == 0) {
		close(p[0]);
		test_child_ready();
		test_waitsig();
		unsigned char buf[LEN];
		test_fill(buf, LEN, 0xb10c);
		if (CORRUPT(1))
			buf[LEN - 1] ^= 1;
		if (write(p[1], buf, LEN) != LEN)
			fail("child: write: %m");
		pass();
	}
	close(p[1]);
	test_wait_children_ready();

	test_ready();
	unsigned char buf[LEN + 1];
	size_t got = 0;
	int nread = 0;
	while (got < sizeof(buf)) {
		ssize_t n = read(p[0], buf + got, sizeof(buf) - got);
		nread++;
		if (n < 0)
			fail("read returned %s (SIGTERM seen: %d)", strerror(errno), test_terminated);
		if (n == 0)
			break;
		if (!test_terminated)
			fail("read returned %zd bytes before the child was told to write", n);
		got += n;
	}
	if (got != LEN)
		fail("read %zu bytes, expected %d", got, LEN);
	long off = test_check_fill(buf, LEN, 0xb10c);
	if (off >= 0)
		fail("data from the child differs at offset %ld", off);
	test_msg("%zu bytes in %d read() calls", got, nread);
	pass();
}
