/*
 * Fds at the top of the fd limit, as valgrind keeps its own (fds 19988 and
 * up under a limit of 20000, its client's at 0-2 and 10): a regular file at
 * limit-1, a pipe with 5 bytes buffered at limit-3 and limit-2, fd 10, and
 * the soft limit raised to the hard one. The restore, whose own limit is
 * the same, makes its fds in a gap below these (it has no room above
 * them). After the restore: exactly the same fd numbers are open (none of
 * the restorer's left behind in the gap), the file reads back, the pipe
 * holds its bytes and still connects its two fds, and the limit is as it
 * was.
 *
 * CORRUPT(k), after the SIGTERM: 1 closes the file at limit-1; 2 leaves an
 * extra fd open in the gap; 3 lowers the soft limit.
 */
#include "lib.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/resource.h>

#define MAXFDS 64

/* The open fd numbers, ascending; their count. */
static int open_fds(int *out)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		fail("opendir /proc/self/fd: %m");
	int n = 0, self = dirfd(d);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || atoi(e->d_name) == self)
			continue;
		if (n == MAXFDS)
			fail("more than %d fds open", MAXFDS);
		int fd = atoi(e->d_name), i = n++;
		while (i > 0 && out[i - 1] > fd) {
			out[i] = out[i - 1];
			i--;
		}
		out[i] = fd;
	}
	closedir(d);
	return n;
}

static void move_fd(int fd, int to)
{
	if (dup2(fd, to) != to)
		fail("dup2 to fd %d: %m", to);
	close(fd);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	struct rlimit lim;
	if (getrlimit(RLIMIT_NOFILE, &lim) || lim.rlim_max < 64 || lim.rlim_max > (1 << 20))
		fail("getrlimit: %m (hard limit %lu)", (unsigned long)lim.rlim_max);
	lim.rlim_cur = lim.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &lim))
		fail("setrlimit: %m");
	const int top = (int)lim.rlim_max - 1;

	char path[] = "/tmp/zdtm_fd_high_XXXXXX";
	int f = mkstemp(path);
	if (f < 0 || write(f, "high file", 9) != 9)
		fail("temp file: %m");
	unlink(path);
	move_fd(f, top);
	int p[2];
	if (pipe(p) || write(p[1], "piped", 5) != 5)
		fail("pipe: %m");
	move_fd(p[0], top - 2);
	move_fd(p[1], top - 1);
	int ten = open("/dev/null", O_RDONLY);
	if (ten < 0)
		fail("open /dev/null: %m");
	move_fd(ten, 10);

	int before[MAXFDS];
	int n_before = open_fds(before);
	test_msg("limit %lu, %d fds open, the highest %d", (unsigned long)lim.rlim_max, n_before, before[n_before - 1]);
	test_ready();
	test_waitsig();

	if (CORRUPT(1))
		close(top);
	if (CORRUPT(2))
		dup2(10, top - 100);
	if (CORRUPT(3)) {
		struct rlimit low = {lim.rlim_max / 2, lim.rlim_max};
		setrlimit(RLIMIT_NOFILE, &low);
	}

	int after[MAXFDS];
	int n_after = open_fds(after);
	for (int i = 0; i < n_before || i < n_after; i++) {
		if (i >= n_before || i >= n_after || before[i] != after[i])
			fail("the open fds differ at the %dth: %d before, %d after (%d fds before, %d after)", i + 1,
			     i < n_before ? before[i] : -1, i < n_after ? after[i] : -1, n_before, n_after);
	}
	char buf[16] = {0};
	if (pread(top, buf, sizeof buf, 0) != 9 || memcmp(buf, "high file", 9))
		fail("the file at fd %d reads \"%s\"", top, buf);
	int avail = -1;
	if (ioctl(top - 2, FIONREAD, &avail) || avail != 5)
		fail("the pipe at fd %d holds %d bytes, not 5", top - 2, avail);
	if (write(top - 1, "!", 1) != 1 || read(top - 2, buf, 6) != 6 || memcmp(buf, "piped!", 6))
		fail("the pipe at fds %d/%d does not connect them: \"%.6s\"", top - 2, top - 1, buf);
	struct rlimit now;
	if (getrlimit(RLIMIT_NOFILE, &now) || now.rlim_cur != lim.rlim_cur || now.rlim_max != lim.rlim_max)
		fail("the fd limit is %lu/%lu, was %lu/%lu", (unsigned long)now.rlim_cur, (unsigned long)now.rlim_max,
		     (unsigned long)lim.rlim_cur, (unsigned long)lim.rlim_max);
	pass();
}
