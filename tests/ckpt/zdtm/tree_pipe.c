/*
 * A process tree: root R with children C1 and C2, and C1's child G. C1 is
 * in its own process group (setpgid), G in C1's, C2 in its own session
 * (setsid). Pipe P1 carries 2000 bytes from R to C1 and pipe P2 1000 bytes
 * from G to R, unread at checkpoint time. After the restore every process
 * checks its own pid, parent, process group and session (the root: all but
 * its parent, which is then `roam restore`), the in-flight bytes arrive,
 * more bytes written after the restore follow them, and each reader sees
 * EOF once its only writer is done (no stray copies of a pipe end).
 */
#include "lib.h"

#include <poll.h>
#include <sys/wait.h>

struct ids { pid_t pid, ppid, pgid, sid; };

static struct ids my_ids(void)
{
	return (struct ids){ getpid(), getppid(), getpgid(0), getsid(0) };
}

static void check_ids(const char *who, struct ids was, int check_ppid)
{
	struct ids now = my_ids();
	if (CORRUPT(4) && !strcmp(who, "C2"))
		now.sid = 1;
	if (now.pid != was.pid || (check_ppid && now.ppid != was.ppid) || now.pgid != was.pgid ||
	    now.sid != was.sid)
		fail("%s: pid/ppid/pgid/sid %d/%d/%d/%d, was %d/%d/%d/%d", who, now.pid, now.ppid,
		     now.pgid, now.sid, was.pid, was.ppid, was.pgid, was.sid);
}

static void write_all(int fd, size_t len, uint64_t seed)
{
	unsigned char buf[4096];
	test_fill(buf, len, seed);
	if (write(fd, buf, len) != (ssize_t)len)
		fail("write: %m");
}

/* Reads exactly len bytes (5 s at most) and checks them. */
static void read_check(int fd, size_t len, uint64_t seed, const char *what)
{
	unsigned char buf[4096];
	size_t got = 0;
	while (got < len) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 5000) != 1)
			fail("%s: only %zu of %zu bytes within 5 s", what, got, len);
		ssize_t n = read(fd, buf + got, len - got);
		if (n <= 0)
			fail("%s: %s after %zu of %zu bytes", what, n ? strerror(errno) : "EOF", got, len);
		got += n;
	}
	long off = test_check_fill(buf, len, seed);
	if (off >= 0)
		fail("%s: data differs at offset %ld", what, off);
}

static void expect_eof(int fd, const char *what)
{
	struct pollfd p = { fd, POLLIN, 0 };
	char c;
	if (poll(&p, 1, 5000) != 1)
		fail("%s: no EOF within 5 s (another writer still holds the pipe?)", what);
	ssize_t n = read(fd, &c, 1);
	if (n != 0)
		fail("%s: read returned %zd instead of EOF", what, n);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	int p1[2], p2[2];
	if (pipe(p1) || pipe(p2))
		fail("pipe: %m");

	if (test_fork() == 0) {			/* C1 */
		close(p1[1]);
		close(p2[0]);
		if (setpgid(0, 0))
			fail("C1: setpgid: %m");
		if (test_fork() == 0) {		/* G */
			close(p1[0]);
			write_all(p2[1], 1000, 0x61);
			struct ids g = my_ids();
			test_child_ready();
			test_waitsig();
			if (CORRUPT(2))
				setpgid(0, 0);
			check_ids("G", g, 1);
			write_all(p2[1], 500, 0x62);
			close(p2[1]);
			pass();
		}
		close(p2[1]);
		struct ids c1 = my_ids();
		test_wait_children_ready();
		test_child_ready();
		test_waitsig();
		check_ids("C1", c1, 1);
		if (CORRUPT(1)) {
			char c;
			read(p1[0], &c, 1);
		}
		read_check(p1[0], 2000, 0x11, "C1: in-flight data from R");
		read_check(p1[0], 500, 0x12, "C1: data R wrote after restore");
		expect_eof(p1[0], "C1: pipe from R");
		pass();
	}
	if (test_fork() == 0) {			/* C2 */
		close(p1[0]);
		close(p1[1]);
		close(p2[0]);
		close(p2[1]);
		if (setsid() < 0)
			fail("C2: setsid: %m");
		struct ids c2 = my_ids();
		test_child_ready();
		test_waitsig();
		check_ids("C2", c2, 1);
		pass();
	}
	close(p1[0]);
	if (!CORRUPT(3))
		close(p2[1]);
	write_all(p1[1], 2000, 0x11);
	struct ids r = my_ids();
	test_wait_children_ready();

	test_ready();
	test_waitsig();

	check_ids("R", r, 0);
	write_all(p1[1], 500, 0x12);
	close(p1[1]);
	read_check(p2[0], 1000, 0x61, "R: in-flight data from G");
	read_check(p2[0], 500, 0x62, "R: data G wrote after restore");
	expect_eof(p2[0], "R: pipe from G");
	pass();
}
