/*
 * A working directory that was removed: the root made a directory (mode
 * 0751), went into it, forked a child (which shares it), opened it at fd 7
 * too, and removed it, as a job's run directory cleaned away under it is.
 * After the restore both processes are still in one removed directory
 * (/proc/self/cwd names the old path, " (deleted)" added; getcwd fails
 * with ENOENT; no name in it can be made), the same one fd 7 holds, with
 * its mode.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "lib.h"

static void check(const char *who, const char *cwd_before, const struct stat *before)
{
	char cwd[4096];
	struct stat now;
	ssize_t n = readlink("/proc/self/cwd", cwd, sizeof cwd - 1);
	cwd[n > 0 ? n : 0] = '\0';
	if (strcmp(cwd, cwd_before) != 0)
		fail("%s: /proc/self/cwd '%s', was '%s'", who, cwd, cwd_before);
	if (getcwd(cwd, sizeof cwd) || errno != ENOENT)
		fail("%s: getcwd did not fail with ENOENT", who);
	if (stat(".", &now) != 0)
		fail("%s: stat .: %m", who);
	if (now.st_nlink != 0)
		fail("%s: its working directory has %ld links, want 0 (removed)", who, (long)now.st_nlink);
	if ((now.st_mode & 07777) != (before->st_mode & 07777) || now.st_uid != before->st_uid)
		fail("%s: mode %o owner %d, was %o %d", who, now.st_mode & 07777, now.st_uid, before->st_mode & 07777,
		     before->st_uid);
	if (open("new-file", O_CREAT | O_WRONLY, 0600) >= 0 || errno != ENOENT)
		fail("%s: a file could be made in the removed directory", who);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	char dir[] = "cwdXXXXXX";
	if (!mkdtemp(dir) || chmod(dir, 0751) != 0 || chdir(dir) != 0)
		fail("make the directory: %m");
	if (open(".", O_RDONLY | O_DIRECTORY) < 0 || dup2(3, 7) != 7)
		fail("open it at fd 7: %m");
	close(3);
	char cwd_before[4096];
	struct stat before;
	if (!getcwd(cwd_before, sizeof cwd_before) || stat(".", &before) != 0)
		fail("getcwd: %m");
	size_t len = strlen(cwd_before);
	if (rmdir(cwd_before) != 0)
		fail("rmdir: %m");
	snprintf(cwd_before + len, sizeof cwd_before - len, " (deleted)");  /* as /proc/self/cwd reads */

	pid_t child = test_fork();
	if (child == 0) {
		test_child_ready();
		test_waitsig();
		if (CORRUPT(1))
			chdir("/");
		check("child", cwd_before, &before);
		pass();
	}
	test_wait_children_ready();
	test_ready();
	test_waitsig();

	if (CORRUPT(2)) {
		char other[] = "/tmp/otherXXXXXX";
		if (mkdtemp(other) && chdir(other) == 0)
			rmdir(other); /* removed too, but another */
	}
	if (CORRUPT(3))
		fchmod(7, 0700);
	check("parent", cwd_before, &before);
	struct stat at7, here;
	if (fstat(7, &at7) != 0 || stat(".", &here) != 0 || at7.st_ino != here.st_ino || at7.st_dev != here.st_dev)
		fail("fd 7 is not its working directory any more");
	pass();
}
