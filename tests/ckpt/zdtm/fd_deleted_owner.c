/*
 * A file unlinked while open keeps its owner and mode: created mode 0640
 * (with the set-group-ID bit, 02640), given to uid 1234 gid 4321, then
 * unlinked. After the restore (which recreates it from the image) fstat
 * shows the same owner and mode.
 */
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

#include "lib.h"

int main(int argc, char **argv)
{
	test_init(argc, argv);
	if (geteuid() != 0)
		skip("needs root to give the file to another user");
	char path[PATH_MAX];
	if (!getcwd(path, sizeof(path) - 32))
		fail("getcwd: %m");
	strcat(path, "/owned.data");
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, "owned", 5) != 5)
		fail("create %s: %m", path);
	if (fchown(fd, 1234, 4321) != 0 || fchmod(fd, 02640) != 0 || unlink(path) != 0)
		fail("chown, chmod, unlink: %m");

	test_ready();
	test_waitsig();

	if (CORRUPT(1))
		fchmod(fd, 0644);
	if (CORRUPT(2))
		fchown(fd, 0, 0);

	struct stat st;
	if (fstat(fd, &st) != 0)
		fail("fstat: %m");
	if ((st.st_mode & 07777) != 02640)
		fail("mode %o, want 2640", st.st_mode & 07777);
	if (st.st_uid != 1234 || st.st_gid != 4321)
		fail("owner %u:%u, want 1234:4321", st.st_uid, st.st_gid);
	char buf[8] = "";
	if (pread(fd, buf, 5, 0) != 5 || memcmp(buf, "owned", 5) != 0)
		fail("content lost");
	pass();
}
