/*
 * Character devices: /dev/null (write-only), /dev/zero (read-only, with
 * an offset), /dev/urandom (O_CLOEXEC), /dev/full (read-write) and a second
 * descriptor sharing /dev/null's description. After the restore each fd is
 * the same device (rdev), with the same flags, and behaves like it: writes
 * to /dev/null succeed, /dev/zero reads zeros, /dev/urandom reads varying
 * bytes, writes to /dev/full fail with ENOSPC.
 */
#include "lib.h"

#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

struct dev { const char *path; int flags; int fd; dev_t rdev; };
static struct dev devs[] = {
	{ "/dev/null", O_WRONLY, -1, 0 },
	{ "/dev/zero", O_RDONLY, -1, 0 },
	{ "/dev/urandom", O_RDONLY | O_CLOEXEC, -1, 0 },
	{ "/dev/full", O_RDWR | O_NONBLOCK, -1, 0 },
};
#define NR_DEVS 4

int main(int argc, char **argv)
{
	test_init(argc, argv);
	for (int i = 0; i < NR_DEVS; i++) {
		struct stat st;
		devs[i].fd = open(devs[i].path, devs[i].flags);
		if (devs[i].fd < 0 || fstat(devs[i].fd, &st))
			fail("open %s: %m", devs[i].path);
		devs[i].rdev = st.st_rdev;
	}
	int null2 = dup(devs[0].fd);
	char buf[256];
	if (read(devs[1].fd, buf, 100) != 100)
		fail("read /dev/zero: %m");

	test_ready();
	test_waitsig();

	if (CORRUPT(1)) {
		int f = open("/dev/zero", O_WRONLY);
		dup2(f, devs[0].fd);
		close(f);
	}
	if (CORRUPT(2))
		fcntl(devs[2].fd, F_SETFD, 0);

	for (int i = 0; i < NR_DEVS; i++) {
		struct stat st;
		int fl = fcntl(devs[i].fd, F_GETFL), fdfl = fcntl(devs[i].fd, F_GETFD);
		if (fl < 0 || fstat(devs[i].fd, &st))
			fail("fd %d (%s) is gone", devs[i].fd, devs[i].path);
		if (st.st_rdev != devs[i].rdev || !S_ISCHR(st.st_mode))
			fail("fd %d is device %u:%u, expected %s (%u:%u)", devs[i].fd,
			     major(st.st_rdev), minor(st.st_rdev), devs[i].path,
			     major(devs[i].rdev), minor(devs[i].rdev));
		if ((fl & (O_ACCMODE | O_NONBLOCK)) != (devs[i].flags & (O_ACCMODE | O_NONBLOCK)))
			fail("fd %d (%s): flags %#o", devs[i].fd, devs[i].path, fl);
		if (!!(fdfl & FD_CLOEXEC) != !!(devs[i].flags & O_CLOEXEC))
			fail("fd %d (%s): FD_CLOEXEC %d", devs[i].fd, devs[i].path, fdfl);
	}
	pid_t p = getpid();
	if (syscall(SYS_kcmp, p, p, KCMP_FILE, devs[0].fd, null2) != 0)
		fail("the dup of /dev/null's fd no longer shares its description");
	if (write(devs[0].fd, buf, sizeof(buf)) != sizeof(buf))
		fail("write to /dev/null: %m");
	memset(buf, 1, sizeof(buf));
	if (read(devs[1].fd, buf, sizeof(buf)) != sizeof(buf))
		fail("read /dev/zero: %m");
	for (unsigned i = 0; i < sizeof(buf); i++)
		if (buf[i])
			fail("/dev/zero gave a non-zero byte");
	uint64_t r1 = 0, r2 = 0;
	if (read(devs[2].fd, &r1, 8) != 8 || read(devs[2].fd, &r2, 8) != 8 || r1 == r2)
		fail("/dev/urandom does not give random bytes");
	if (write(devs[3].fd, buf, 1) != -1 || errno != ENOSPC)
		fail("write to /dev/full did not fail with ENOSPC");
	pass();
}
