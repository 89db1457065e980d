/*
 * Deleted files that are not regular files: a FIFO removed while open
 * (once read-write, once write-only, with 11 bytes waiting in it) and a
 * directory removed while open. After the restore both are still
 * deleted (link "... (deleted)", st_nlink 0), with their mode; the FIFO
 * is one FIFO (bytes written through the write-only fd come out of the
 * read-write one) and yields the 11 bytes first; the directory lists as
 * empty and creating a file in it fails with ENOENT.
 *
 * CORRUPT(k), after the SIGTERM: 1 a byte waiting in the FIFO is read
 * early; 2 the FIFO's mode changes (fchmod); 3 the write-only fd is
 * replaced by a fresh pipe's write end.
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

#include "lib.h"

static void check_deleted(int fd, const char *path, mode_t type, mode_t mode)
{
	char link[PATH_MAX + 16], want[PATH_MAX + 16];
	test_fd_link(fd, link, sizeof(link));
	snprintf(want, sizeof(want), "%s (deleted)", path);
	if (strcmp(link, want))
		fail("fd %d is '%s', want '%s'", fd, link, want);
	struct stat st;
	if (fstat(fd, &st))
		fail("fstat fd %d: %m", fd);
	if ((st.st_mode & S_IFMT) != type || (st.st_mode & 07777) != mode || st.st_nlink != 0)
		fail("fd %d: mode %o nlink %lu, want %o %o and 0", fd, st.st_mode, (unsigned long)st.st_nlink, type, mode);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	char cwd[PATH_MAX - 32], fifo[PATH_MAX], dir[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)))
		fail("getcwd: %m");
	snprintf(fifo, sizeof(fifo), "%s/gone.fifo", cwd);
	snprintf(dir, sizeof(dir), "%s/gone.dir", cwd);
	if (mkfifo(fifo, 0600) || chmod(fifo, 0641) || mkdir(dir, 0700) || chmod(dir, 0751))
		fail("mkfifo, mkdir: %m");
	int rw = open(fifo, O_RDWR | O_NONBLOCK);
	int wo = open(fifo, O_WRONLY);
	int d = open(dir, O_RDONLY | O_DIRECTORY);
	if (rw < 0 || wo < 0 || d < 0)
		fail("open: %m");
	if (write(wo, "hello fifo!", 11) != 11)
		fail("write: %m");
	if (unlink(fifo) || rmdir(dir))
		fail("unlink, rmdir: %m");

	test_ready();
	test_waitsig();

	char buf[64];
	if (CORRUPT(1))
		(void)!read(rw, buf, 1);
	if (CORRUPT(2))
		fchmod(rw, 0600);
	if (CORRUPT(3)) {
		int p[2];
		if (pipe(p) == 0)
			dup2(p[1], wo);
	}
	check_deleted(rw, fifo, S_IFIFO, 0641);
	check_deleted(wo, fifo, S_IFIFO, 0641);
	check_deleted(d, dir, S_IFDIR, 0751);
	if (read(rw, buf, sizeof(buf)) != 11 || memcmp(buf, "hello fifo!", 11))
		fail("the FIFO does not yield its 11 bytes");
	if (write(wo, "again", 5) != 5)
		fail("write again: %m");
	ssize_t n = read(rw, buf, sizeof(buf));
	if (n != 5 || memcmp(buf, "again", 5))
		fail("the write-only and read-write fds are not one FIFO (read %zd)", n);
	DIR *ds = fdopendir(dup(d));
	struct dirent *e;
	int entries = 0;
	while (ds && (e = readdir(ds)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			entries++;
	if (!ds || entries)
		fail("the removed directory lists %d entries", entries);
	if (openat(d, "new", O_CREAT | O_WRONLY, 0600) >= 0 || errno != ENOENT)
		fail("a file could be made in the removed directory (%m)");
	pass();
}
