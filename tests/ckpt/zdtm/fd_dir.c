/*
 * Directory descriptors: an O_DIRECTORY fd on the working directory, one on
 * a subdirectory whose getdents64() position is in the middle of its 40
 * entries, and an O_PATH fd on a file. After the restore: same flags and
 * inodes; openat() relative to the directory fd and fchdir() work; reading
 * the half-read directory on from its position returns exactly the entries
 * not yet seen; the O_PATH fd still names the file (fstat, /proc link).
 */
#include "lib.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define NR_ENTRIES 40

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

static char seen[NR_ENTRIES + 1];

/* Reads up to `max` entries (0: all) from fd into seen[]; returns the count. */
static int read_entries(int fd, int max)
{
	char buf[64];	/* small: one or two entries per call */
	int count = 0;
	for (;;) {
		long n = syscall(SYS_getdents64, fd, buf, sizeof(buf));
		if (n < 0)
			fail("getdents64: %m");
		if (n == 0)
			return count;
		for (long off = 0; off < n;) {
			struct linux_dirent64 *d = (void *)(buf + off);
			off += d->d_reclen;
			int i;
			if (sscanf(d->d_name, "e%d", &i) == 1 && i >= 0 && i < NR_ENTRIES) {
				if (seen[i])
					fail("entry %s returned twice", d->d_name);
				seen[i] = 1;
			}
			count++;
		}
		if (max && count >= max)
			return count;
	}
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	if (mkdir("dir", 0755) && errno != EEXIST)
		fail("mkdir: %m");
	for (int i = 0; i < NR_ENTRIES; i++) {
		char p[32];
		snprintf(p, sizeof(p), "dir/e%d", i);
		int fd = open(p, O_CREAT | O_WRONLY, 0644);
		if (fd < 0)
			fail("create %s: %m", p);
		close(fd);
	}
	int fd_file = open("plain.data", O_CREAT | O_WRONLY | O_TRUNC, 0644);
	if (fd_file < 0 || write(fd_file, "hello", 5) != 5)
		fail("create plain.data: %m");
	close(fd_file);

	int fd_cwd = open(".", O_RDONLY | O_DIRECTORY);
	int fd_sub = open("dir", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int fd_path = open("plain.data", O_PATH);
	if (fd_cwd < 0 || fd_sub < 0 || fd_path < 0)
		fail("open: %m");
	int first = read_entries(fd_sub, 15);
	off_t pos = lseek(fd_sub, 0, SEEK_CUR);
	struct stat st_cwd, st_sub, st_path;
	fstat(fd_cwd, &st_cwd);
	fstat(fd_sub, &st_sub);
	fstat(fd_path, &st_path);
	char cwd[PATH_MAX];
	getcwd(cwd, sizeof(cwd));
	test_msg("read %d entries of dir/ before the checkpoint, position %lld", first,
		 (long long)pos);

	test_ready();
	test_waitsig();

	if (CORRUPT(1))
		lseek(fd_sub, 0, SEEK_SET);
	if (CORRUPT(2)) {
		int f = open("dir", O_RDONLY | O_DIRECTORY);
		dup2(f, fd_cwd);
		close(f);
	}
	if (CORRUPT(3))
		fcntl(fd_sub, F_SETFD, 0);

	struct stat st;
	if (fstat(fd_cwd, &st) || st.st_ino != st_cwd.st_ino || !S_ISDIR(st.st_mode))
		fail("fd %d is no longer the working directory", fd_cwd);
	if (fstat(fd_sub, &st) || st.st_ino != st_sub.st_ino)
		fail("fd %d is no longer dir/", fd_sub);
	if (fstat(fd_path, &st) || st.st_ino != st_path.st_ino)
		fail("O_PATH fd %d is no longer plain.data", fd_path);
	if ((fcntl(fd_path, F_GETFL) & O_PATH) != O_PATH)
		fail("fd %d lost O_PATH", fd_path);
	if ((fcntl(fd_sub, F_GETFL) & O_DIRECTORY) != O_DIRECTORY ||
	    !(fcntl(fd_sub, F_GETFD) & FD_CLOEXEC))
		fail("fd %d lost O_DIRECTORY or FD_CLOEXEC", fd_sub);
	if (lseek(fd_sub, 0, SEEK_CUR) != pos)
		fail("dir/ position is %lld, was %lld", (long long)lseek(fd_sub, 0, SEEK_CUR),
		     (long long)pos);
	int rest = read_entries(fd_sub, 0);
	for (int i = 0; i < NR_ENTRIES; i++)
		if (!seen[i])
			fail("entry e%d was never returned (position lost?)", i);
	if (first + rest != NR_ENTRIES + 2)	/* + "." and ".." */
		fail("%d + %d entries read, expected %d", first, rest, NR_ENTRIES + 2);

	int f = openat(fd_cwd, "plain.data", O_RDONLY);
	char buf[6] = "";
	if (f < 0 || read(f, buf, 5) != 5 || strcmp(buf, "hello"))
		fail("openat relative to the directory fd failed");
	close(f);
	char link[64], target[PATH_MAX];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd_path);
	ssize_t n = readlink(link, target, sizeof(target) - 1);
	target[n < 0 ? 0 : n] = 0;
	if (strcmp(target, cwd) <= 0 || strcmp(target + strlen(cwd), "/plain.data"))
		fail("O_PATH fd links to \"%s\"", target);
	if (fchdir(fd_sub) || access("e0", F_OK))
		fail("fchdir to the directory fd failed");
	pass();
}
