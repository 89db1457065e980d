/*
 * Thousands of fds of one file: 3000 opens of the same file, each its own
 * open file description at its own offset (i % 97), and every tenth of
 * them dup'ed to a second fd, which shares its description. The dump
 * tells descriptions apart with kcmp, in its order (one call per halving:
 * comparing each fd with every one met before took 13 s for 5000 fds of
 * one file, all of it with the process frozen).
 *
 * After the restore: every fd is at its offset; moving a dup'ed fd moves
 * its twin and nothing else; two opens never share an offset.
 *
 * CORRUPT(k), after the SIGTERM: 1 one fd is at another offset; 2 a twin
 * is opened again instead of shared.
 */
#include "lib.h"

#include <fcntl.h>
#include <sys/resource.h>

#define N 3000

static int fds[N], twins[N / 10];

static long off_of(int fd) { return (long)lseek(fd, 0, SEEK_CUR); }

int main(int argc, char **argv)
{
	test_init(argc, argv);
	struct rlimit r;
	getrlimit(RLIMIT_NOFILE, &r);
	r.rlim_cur = N + N / 10 + 64;
	if (r.rlim_max < r.rlim_cur)
		r.rlim_max = r.rlim_cur;
	if (setrlimit(RLIMIT_NOFILE, &r))
		skip("cannot have %d fds: %m", (int)r.rlim_cur);

	char buf[128];
	memset(buf, 'x', sizeof(buf));
	FILE *f = fopen("many.dat", "w");
	if (!f || fwrite(buf, 1, sizeof(buf), f) != sizeof(buf) || fclose(f))
		fail("make many.dat: %m");
	for (int i = 0; i < N; i++) {
		fds[i] = open("many.dat", O_RDONLY);
		if (fds[i] < 0)
			fail("open %d: %m", i);
		if (lseek(fds[i], i % 97, SEEK_SET) != i % 97)
			fail("lseek: %m");
	}
	for (int i = 0; i < N / 10; i++) {
		twins[i] = dup(fds[i * 10]);
		if (twins[i] < 0)
			fail("dup: %m");
	}
	test_ready();
	test_waitsig();

	if (CORRUPT(1))
		lseek(fds[1234], 3, SEEK_CUR);
	if (CORRUPT(2)) {
		int again = open("many.dat", O_RDONLY);
		lseek(again, off_of(twins[7]), SEEK_SET);
		dup2(again, twins[7]);
		close(again);
	}
	for (int i = 0; i < N; i++) {
		if (off_of(fds[i]) != i % 97)
			fail("fd %d is at offset %ld, not %d", fds[i], off_of(fds[i]), i % 97);
	}
	for (int i = 0; i < N / 10; i++) {
		int a = fds[i * 10], b = twins[i];
		if (off_of(b) != off_of(a))
			fail("fd %d (a dup of %d) is at %ld, its twin at %ld", b, a, off_of(b), off_of(a));
		lseek(a, 100, SEEK_SET);
		if (off_of(b) != 100)
			fail("fd %d no longer shares fd %d's description", b, a);
		/* the next open is its own: untouched */
		if (off_of(fds[i * 10 + 1]) != (i * 10 + 1) % 97)
			fail("fd %d moved with fd %d", fds[i * 10 + 1], a);
	}
	test_msg("%d descriptions of one file, %d of them shared by two fds", N, N / 10);
	pass();
}
