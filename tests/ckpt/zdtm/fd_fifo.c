/*
 * A named FIFO with data in it: the program holds the read end (O_NONBLOCK)
 * and a write end, and 3000 bytes are buffered. After the restore the fds
 * still name the FIFO (S_ISFIFO, same inode as the path), the bytes are
 * there, and a writer that opens the FIFO by its path afterwards reaches
 * the held read end (so the restored fds are the named FIFO, not some
 * anonymous pipe).
 */
#include "lib.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#define LEN 3000

int main(int argc, char **argv)
{
	test_init(argc, argv);
	unlink("fifo");
	if (mkfifo("fifo", 0600))
		fail("mkfifo: %m");
	int rfd = open("fifo", O_RDONLY | O_NONBLOCK);
	int wfd = open("fifo", O_WRONLY);
	if (rfd < 0 || wfd < 0)
		fail("open fifo: %m");
	unsigned char buf[LEN];
	test_fill(buf, LEN, 0xf1f0);
	if (write(wfd, buf, LEN) != LEN)
		fail("write: %m");
	struct stat st_before;
	stat("fifo", &st_before);

	test_ready();
	test_waitsig();

	if (CORRUPT(1)) {
		int p[2];
		pipe2(p, O_NONBLOCK);
		write(p[1], buf, LEN);
		dup2(p[0], rfd);
		dup2(p[1], wfd);
	}
	if (CORRUPT(2)) {
		char c;
		read(rfd, &c, 1);
	}

	struct stat st;
	if (fstat(rfd, &st) || !S_ISFIFO(st.st_mode) || st.st_ino != st_before.st_ino)
		fail("fd %d is not the FIFO any more", rfd);
	if (fstat(wfd, &st) || st.st_ino != st_before.st_ino)
		fail("fd %d is not the FIFO any more", wfd);
	int avail;
	if (ioctl(rfd, FIONREAD, &avail) || avail != LEN)
		fail("%d bytes in the FIFO, expected %d", avail, LEN);
	unsigned char got[LEN];
	if (read(rfd, got, LEN) != LEN || memcmp(got, buf, LEN))
		fail("the FIFO's data differs");
	int w2 = open("fifo", O_WRONLY | O_NONBLOCK);
	if (w2 < 0)
		fail("open fifo for writing after restore: %m");
	if (write(w2, "via path", 8) != 8)
		fail("write: %m");
	char s[9] = "";
	if (read(rfd, s, 8) != 8 || strcmp(s, "via path"))
		fail("data written through the FIFO's path did not reach the held read end");
	pass();
}
