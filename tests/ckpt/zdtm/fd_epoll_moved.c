/*
 * epoll registrations whose fd number no longer names their file: a pipe
 * added as fd A, then moved (dup'd to fd 40, A closed and given to
 * /dev/null); and one pipe added twice, under two dup'd numbers. The kernel
 * keeps each registration while its file is open anywhere, keyed by (file,
 * number). After the restore: data in the first pipe wakes its entry,
 * data in the second wakes both of its entries, each with its own data
 * word, and fd A is still /dev/null.
 */
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/stat.h>

#include "lib.h"

static int ep, moved_w, twice_w, a;

static void add(int fd, uint64_t data)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = data };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
		fail("epoll_ctl add %d: %m", fd);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	signal(SIGPIPE, SIG_IGN);  /* a pipe whose read end is gone fails the write */
	int p1[2], p2[2];
	ep = epoll_create1(0);
	if (ep < 0 || pipe(p1) != 0 || pipe(p2) != 0)
		fail("setup: %m");
	a = p1[0];
	moved_w = p1[1];
	twice_w = p2[1];
	add(a, 1);
	if (dup2(a, 40) != 40 || close(a) != 0 || open("/dev/null", O_RDONLY) != a)
		fail("move fd %d: %m", a);
	int twice = dup(p2[0]);
	add(p2[0], 2);
	add(twice, 3);

	test_ready();
	test_waitsig();

	if (CORRUPT(1))
		epoll_ctl(ep, EPOLL_CTL_DEL, twice, NULL);
	if (CORRUPT(2))
		close(40);

	struct epoll_event evs[8];
	if (epoll_wait(ep, evs, 8, 0) != 0)
		fail("events before any data");
	if (write(moved_w, "x", 1) != 1 || write(twice_w, "y", 1) != 1)
		fail("write: %m");
	int n = epoll_wait(ep, evs, 8, 1000);
	unsigned seen = 0;
	for (int i = 0; i < n; i++)
		seen |= 1u << evs[i].data.u64;
	if (n != 3 || seen != ((1u << 1) | (1u << 2) | (1u << 3)))
		fail("%d events, data mask 0x%x; want 3 (0xe)", n, seen);
	struct stat st, null;
	if (fstat(a, &st) != 0 || stat("/dev/null", &null) != 0 || st.st_rdev != null.st_rdev)
		fail("fd %d is not /dev/null any more", a);
	pass();
}
