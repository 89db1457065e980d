/*
 * A file unlinked while open: two descriptors (separate opens, different
 * offsets) and a MAP_SHARED mapping of a 20000-byte file whose name was
 * removed. After the restore: content and offsets intact, st_nlink is 0,
 * the /proc/self/fd link is the old path followed by " (deleted)", the path
 * itself does not exist (the restore left no file behind), both fds and the
 * mapping are still the same inode (a write through one is seen through the
 * others). And a file made with O_TMPFILE (never named: Python's
 * tempfile.TemporaryFile), with its content and offset.
 *
 * CORRUPT(4): the O_TMPFILE file's offset moves.
 */
#include "lib.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define LEN 20000

int main(int argc, char **argv)
{
	test_init(argc, argv);
	char path[PATH_MAX];
	if (!getcwd(path, sizeof(path) - 32))
		fail("getcwd: %m");
	strcat(path, "/deleted.data");

	unsigned char *content = malloc(LEN);
	test_fill(content, LEN, 0xde1);
	int fd1 = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd1 < 0 || write(fd1, content, LEN) != LEN)
		fail("create %s: %m", path);
	int fd2 = open(path, O_RDONLY);
	if (fd2 < 0)
		fail("open: %m");
	unsigned char *m = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd1, 0);
	if (m == MAP_FAILED)
		fail("mmap: %m");
	lseek(fd1, 1234, SEEK_SET);
	lseek(fd2, 10, SEEK_SET);
	struct stat st_before;
	fstat(fd1, &st_before);
	if (unlink(path))
		fail("unlink: %m");
	char dir[PATH_MAX];
	if (!getcwd(dir, sizeof(dir)))
		fail("getcwd: %m");
	int tmp = open(dir, O_TMPFILE | O_RDWR, 0600);
	if (tmp < 0 || write(tmp, "temporary", 9) != 9 || lseek(tmp, 4, SEEK_SET) != 4)
		fail("O_TMPFILE in %s: %m", dir);

	test_ready();
	test_waitsig();

	if (CORRUPT(1))
		m[LEN - 1] ^= 1;
	if (CORRUPT(2)) {
		int f = open(path, O_CREAT | O_WRONLY, 0600);
		close(f);
	}
	if (CORRUPT(3))
		lseek(fd2, 11, SEEK_SET);
	if (CORRUPT(4))
		lseek(tmp, 0, SEEK_SET);
	char rest[16] = { 0 };
	if (read(tmp, rest, sizeof(rest)) != 5 || memcmp(rest, "orary", 5))
		fail("the O_TMPFILE file reads \"%s\" from its offset, not \"orary\"", rest);

	struct stat st1, st2;
	if (fstat(fd1, &st1) || fstat(fd2, &st2))
		fail("fstat: %m");
	if (st1.st_nlink != 0)
		fail("the deleted file has %lu links after restore", (unsigned long)st1.st_nlink);
	if (st1.st_ino != st2.st_ino || st1.st_dev != st2.st_dev)
		fail("the two fds are no longer the same file");
	if (st1.st_size != LEN)
		fail("size %lld, expected %d", (long long)st1.st_size, LEN);
	if (access(path, F_OK) == 0)
		fail("%s exists after restore", path);
	if (lseek(fd1, 0, SEEK_CUR) != 1234 || lseek(fd2, 0, SEEK_CUR) != 10)
		fail("offsets %lld and %lld, expected 1234 and 10",
		     (long long)lseek(fd1, 0, SEEK_CUR), (long long)lseek(fd2, 0, SEEK_CUR));
	unsigned char *buf = malloc(LEN);
	if (pread(fd2, buf, LEN, 0) != LEN || memcmp(buf, content, LEN))
		fail("the deleted file's content differs");
	if (memcmp(m, content, LEN))
		fail("the mapping of the deleted file differs");
	for (int fd = fd1; fd <= fd2; fd++) {
		char target[PATH_MAX + 16], want[PATH_MAX + 16];
		test_fd_link(fd, target, sizeof(target));
		snprintf(want, sizeof(want), "%s (deleted)", path);
		if (strcmp(target, want))
			fail("fd %d links to \"%s\", expected \"%s\"", fd, target, want);
	}
	/* One inode: fd -> mapping and mapping -> fd. */
	if (pwrite(fd1, "XYZ", 3, 100) != 3 || memcmp(m + 100, "XYZ", 3))
		fail("a write through fd %d is not seen in the mapping", fd1);
	memcpy(m + 200, "abc", 3);
	if (pread(fd2, buf, 3, 200) != 3 || memcmp(buf, "abc", 3))
		fail("a write through the mapping is not seen through fd %d", fd2);
	pass();
}
