/*
 * epoll: a set watching a pipe's read end (EPOLLIN, data 0x1111...), an
 * eventfd (EPOLLIN|EPOLLET, data 0x2222...) and the pipe's write end
 * (EPOLLOUT, data 0x3333...), with data in the pipe. After the restore the
 * "tfd:" lines of the epoll fd's fdinfo (fd, events, data) are the same,
 * epoll_wait reports the pipe's two ends with their data values and not the
 * idle eventfd, and a write to the eventfd after the restore is reported
 * with its data value.
 */
#include "lib.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#define D_READ 0x1111111111111111ULL
#define D_EVENT 0x2222222222222222ULL
#define D_WRITE 0x3333333333333333ULL

/* The tfd lines without the ino: field (inode numbers change). */
static void tfd_lines(int epfd, char *out, size_t len)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", epfd);
	FILE *f = fopen(path, "r");
	if (!f)
		fail("open %s: %m", path);
	out[0] = 0;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "tfd:", 4))
			continue;
		char *ino = strstr(line, " pos:");
		if (!ino)
			ino = strstr(line, " ino:");
		if (ino)
			strcpy(ino, "\n");
		strncat(out, line, len - strlen(out) - 1);
	}
	fclose(f);
	test_sort_lines(out);
}

static int wait_events(int epfd, struct epoll_event *ev, int max)
{
	int n = epoll_wait(epfd, ev, max, 100);
	if (n < 0)
		fail("epoll_wait: %m");
	return n;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	int p[2];
	if (pipe(p))
		fail("pipe: %m");
	int efd = eventfd(0, EFD_NONBLOCK);
	int epfd = epoll_create1(EPOLL_CLOEXEC);
	if (efd < 0 || epfd < 0)
		fail("eventfd/epoll: %m");
	struct epoll_event ev;
	ev = (struct epoll_event){ EPOLLIN, { .u64 = D_READ } };
	epoll_ctl(epfd, EPOLL_CTL_ADD, p[0], &ev);
	ev = (struct epoll_event){ EPOLLIN | EPOLLET, { .u64 = D_EVENT } };
	epoll_ctl(epfd, EPOLL_CTL_ADD, efd, &ev);
	ev = (struct epoll_event){ EPOLLOUT, { .u64 = D_WRITE } };
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, p[1], &ev))
		fail("epoll_ctl: %m");
	if (write(p[1], "data", 4) != 4)
		fail("write: %m");
	char before[2048], after[2048];
	tfd_lines(epfd, before, sizeof(before));

	test_ready();
	test_waitsig();

	if (CORRUPT(1)) {
		ev = (struct epoll_event){ EPOLLIN, { .u64 = D_READ + 1 } };
		epoll_ctl(epfd, EPOLL_CTL_MOD, p[0], &ev);
		tfd_lines(epfd, before, sizeof(before));
	}
	if (CORRUPT(2))
		epoll_ctl(epfd, EPOLL_CTL_DEL, p[1], NULL);
	if (CORRUPT(3)) {
		uint64_t one = 1;
		write(efd, &one, 8);
	}

	tfd_lines(epfd, after, sizeof(after));
	if (strcmp(before, after))
		fail("the epoll set changed:\n%s-- was --\n%s", after, before);
	struct epoll_event got[8];
	int n = wait_events(epfd, got, 8);
	int seen_read = 0, seen_write = 0;
	for (int i = 0; i < n; i++) {
		if (got[i].data.u64 == D_READ && (got[i].events & EPOLLIN))
			seen_read++;
		else if (got[i].data.u64 == D_WRITE && (got[i].events & EPOLLOUT))
			seen_write++;
		else
			fail("unexpected event %#x with data %#llx", got[i].events,
			     (unsigned long long)got[i].data.u64);
	}
	if (seen_read != 1 || seen_write != 1)
		fail("epoll_wait reported the pipe's read end %d times and its write end %d times",
		     seen_read, seen_write);
	ev = (struct epoll_event){ EPOLLOUT | EPOLLET, { .u64 = D_WRITE } };
	epoll_ctl(epfd, EPOLL_CTL_MOD, p[1], &ev);	/* quiet the always-ready end */
	char buf[4];
	read(p[0], buf, 4);
	wait_events(epfd, got, 8);
	uint64_t one = 1;
	write(efd, &one, 8);
	n = wait_events(epfd, got, 8);
	if (n != 1 || got[0].data.u64 != D_EVENT || !(got[0].events & EPOLLIN))
		fail("a write to the eventfd was reported as %d events (first data %#llx)", n,
		     n ? (unsigned long long)got[0].data.u64 : 0ULL);
	pass();
}
