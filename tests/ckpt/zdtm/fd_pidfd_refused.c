/*
 * A pidfd the engine cannot carry: the root holds one of its own parent,
 * the runner, which is outside the tree (a restore elsewhere would have
 * no such process). `roam checkpoint` must fail with one line naming the
 * fd and that pid, and leave the process running untouched: after SIGTERM
 * the fd still names its parent, and a signal 0 sent through it
 * (pidfd_send_signal) reaches it.
 */
#include <fcntl.h>
#include <sys/syscall.h>

#include "lib.h"

int main(int argc, char **argv)
{
	test_init(argc, argv);
	const int fd = 50;
	const pid_t parent = getppid();
	int p = (int)syscall(SYS_pidfd_open, parent, 0);
	if (p < 0 || dup2(p, fd) != fd)
		fail("pidfd of the parent: %m");
	close(p);
	test_expect_refusal("pid %d fd %d: a pidfd of pid %d, a process outside the tree", getpid(), fd, parent);
	test_ready();
	test_waitsig();
	if (CORRUPT(1))
		dup2(open("/dev/null", O_RDONLY), fd);
	if (test_fdinfo_value(fd, "Pid", 10) != parent)
		fail("fd %d no longer names the parent (%d)", fd, parent);
	if (syscall(SYS_pidfd_send_signal, fd, 0, NULL, 0) != 0)
		fail("pidfd_send_signal 0 to the parent: %m");
	pass();
}
