/*
 * Regular files: several descriptors on the same and on different files,
 * with O_APPEND, O_NONBLOCK, O_DSYNC, O_CLOEXEC (FD_CLOEXEC), offsets, a
 * dup()ed descriptor and an F_DUPFD_CLOEXEC one sharing their original's
 * file description, a separate open of the same file with its own offset,
 * high and non-contiguous fd numbers. After the restore each fd has the
 * same number, status flags, close-on-exec flag, offset and inode; shared
 * descriptions are still shared (kcmp and a seek through one moves the
 * other) and separate ones are not; reads and appends work.
 */
#include "lib.h"

#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/stat.h>
#include <sys/syscall.h>

struct fdspec {
	int fd;
	const char *path;
	int flags;		/* open flags */
	off_t pos;
	int cloexec;
};

/* Filled in main(): the fd numbers end up as listed. */
static struct fdspec fds[] = {
	{ 3, "a.data", O_RDWR | O_CREAT, 123, 0 },
	{ 4, "a.data", O_RDONLY, 456, 0 },
	{ 5, "a.data", O_RDWR, 123, 0 },		/* dup(3) */
	{ 20, "a.data", O_RDWR, 123, 1 },		/* F_DUPFD_CLOEXEC of 3 */
	{ 7, "b.data", O_WRONLY | O_APPEND | O_CREAT, 0, 0 },	/* pos: end of file */
	{ 8, "b.data", O_RDONLY | O_NONBLOCK, 7, 0 },
	{ 100, "c.data", O_RDWR | O_CREAT | O_CLOEXEC, 999, 1 },
	{ 11, "d.data", O_WRONLY | O_CREAT | O_DSYNC, 10, 0 },
};
#define NR_FDS (sizeof(fds) / sizeof(fds[0]))
#define STATUS_FLAGS (O_ACCMODE | O_APPEND | O_NONBLOCK | O_DSYNC | O_SYNC | O_DIRECT | O_NOATIME)

static int same_file(int a, int b)
{
	pid_t p = getpid();
	return syscall(SYS_kcmp, p, p, KCMP_FILE, a, b) == 0;
}

static void put(int fd, int want)
{
	if (fd != want) {
		if (dup2(fd, want) != want)
			fail("dup2: %m");
		close(fd);
	}
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	unsigned char content[4096];
	test_fill(content, sizeof(content), 0xf00d);
	for (const char *p = "abcd"; *p; p++) {
		char name[16];
		snprintf(name, sizeof(name), "%c.data", *p);
		int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || write(fd, content, sizeof(content)) != sizeof(content))
			fail("create %s: %m", name);
		close(fd);
	}
	/* fds 3 and 4 are the lowest free ones after stdio. */
	for (int fd = 3; fd < 30; fd++)
		close(fd);
	put(open("a.data", O_RDWR | O_CREAT, 0644), 3);
	put(open("a.data", O_RDONLY), 4);
	put(dup(3), 5);
	if (fcntl(3, F_DUPFD_CLOEXEC, 20) != 20)
		fail("F_DUPFD_CLOEXEC: %m");
	put(open("b.data", O_WRONLY | O_APPEND | O_CREAT, 0644), 7);
	put(open("b.data", O_RDONLY | O_NONBLOCK), 8);
	int c = open("c.data", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (dup3(c, 100, O_CLOEXEC) != 100)
		fail("dup3: %m");
	close(c);
	put(open("d.data", O_WRONLY | O_CREAT | O_DSYNC, 0644), 11);
	lseek(3, 123, SEEK_SET);
	lseek(4, 456, SEEK_SET);
	if (write(7, "appended", 8) != 8)
		fail("write: %m");
	fds[4].pos = sizeof(content) + 8;
	lseek(8, 7, SEEK_SET);
	lseek(100, 999, SEEK_SET);
	lseek(11, 10, SEEK_SET);

	struct stat st_before[NR_FDS];
	for (unsigned i = 0; i < NR_FDS; i++)
		if (fstat(fds[i].fd, &st_before[i]))
			fail("fstat(%d): %m", fds[i].fd);

	test_ready();
	test_waitsig();

	if (CORRUPT(1))
		lseek(4, 457, SEEK_SET);
	if (CORRUPT(2))
		fcntl(8, F_SETFL, 0);
	if (CORRUPT(3))
		fcntl(5, F_SETFD, FD_CLOEXEC);
	if (CORRUPT(4)) {	/* fd 5 becomes a separate description */
		int f = open("a.data", O_RDWR);
		lseek(f, 123, SEEK_SET);
		dup2(f, 5);
		close(f);
	}
	if (CORRUPT(5)) {
		int f = open("c.data", O_RDWR);
		lseek(f, 999, SEEK_SET);
		dup3(f, 100, O_CLOEXEC);
		close(f);
		rename("c.data", "c2.data");
	}

	for (unsigned i = 0; i < NR_FDS; i++) {
		struct fdspec *s = &fds[i];
		struct stat st, path_st;
		int fl = fcntl(s->fd, F_GETFL), fdfl = fcntl(s->fd, F_GETFD);
		if (fl < 0)
			fail("fd %d (%s) is not open", s->fd, s->path);
		int want = s->flags & STATUS_FLAGS;
		if ((fl & STATUS_FLAGS) != want)
			fail("fd %d: status flags %#o, expected %#o", s->fd, fl & STATUS_FLAGS, want);
		if (!!(fdfl & FD_CLOEXEC) != s->cloexec)
			fail("fd %d: FD_CLOEXEC is %d, expected %d", s->fd, !!(fdfl & FD_CLOEXEC),
			     s->cloexec);
		off_t pos = lseek(s->fd, 0, SEEK_CUR);
		if (pos != s->pos)
			fail("fd %d: offset %lld, expected %lld", s->fd, (long long)pos,
			     (long long)s->pos);
		if (fstat(s->fd, &st) || stat(s->path, &path_st) || st.st_ino != path_st.st_ino ||
		    st.st_dev != path_st.st_dev || st.st_ino != st_before[i].st_ino)
			fail("fd %d is not %s any more", s->fd, s->path);
	}
	/* Sharing: 3, 5 and 20 share one description, 4 is separate. */
	if (!same_file(3, 5) || !same_file(3, 20))
		fail("fds 3, 5 and 20 no longer share their file description");
	if (same_file(3, 4) || same_file(7, 8))
		fail("separately opened fds now share a file description");
	lseek(5, 2000, SEEK_SET);
	if (lseek(3, 0, SEEK_CUR) != 2000 || lseek(20, 0, SEEK_CUR) != 2000 ||
	    lseek(4, 0, SEEK_CUR) != 456)
		fail("a seek through fd 5 did not move fds 3 and 20 only");

	unsigned char buf[16];
	if (pread(4, buf, 16, 456) != 16 || memcmp(buf, content + 456, 16))
		fail("reading a.data through fd 4 gave wrong data");
	if (write(7, "more", 4) != 4 || lseek(7, 0, SEEK_CUR) != (off_t)sizeof(content) + 12)
		fail("O_APPEND write through fd 7 did not go to the end");
	char tail[12];
	if (pread(8, tail, 12, sizeof(content)) != 12 || memcmp(tail, "appendedmore", 12))
		fail("b.data does not end with the appended data");
	pass();
}
