/*
 * pidfds, as Go's os/exec and Python's asyncio hold them: the root holds
 * one of a running child A (PIDFD_NONBLOCK, watched by an epoll set under
 * a cookie), one of a child B that exited with status 7 and was not waited
 * for (a zombie), one of a child C that exited and was reaped, and one of
 * itself (PIDFD_THREAD); a test child D holds one of its parent, and the
 * root's four, inherited (A's is then one of its sibling).
 *
 * After the restore each names the same process (fdinfo's Pid, -1 for C),
 * with its flags; A's is not readable until A is told to exit through a
 * pipe, then it and the epoll set say so and waitid(P_PIDFD) gives A's
 * status 42; waitid on B's gives status 7; C's says readable and waitid
 * on it fails with ECHILD, as before.
 */
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "lib.h"

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static int pidfd_open(pid_t pid, unsigned flags)
{
	return (int)syscall(SYS_pidfd_open, pid, flags);
}

static void expect_pid(const char *what, int fd, int want)
{
	long got = test_fdinfo_value(fd, "Pid", 10);
	if (got != want)
		fail("%s (fd %d) names pid %ld, want %d", what, fd, got, want);
}

static int readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* Moves fd to number `to` (fds above the library's own). */
static int move_to(int fd, int to)
{
	if (fd < 0 || dup3(fd, to, O_CLOEXEC) != to)
		fail("place a pidfd at fd %d: %m", to);
	close(fd);
	return to;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	int go[2];
	if (pipe(go) != 0)
		fail("pipe: %m");
	pid_t a = fork();
	if (a == 0) {
		char c;
		close(go[1]);
		_exit(read(go[0], &c, 1) == 1 ? 42 : 1);
	}
	close(go[0]);
	pid_t b = fork();
	if (b == 0)
		_exit(7);
	pid_t c = fork();
	if (c == 0)
		_exit(0);
	int fa = move_to(pidfd_open(a, O_NONBLOCK), 40);
	int fb = move_to(pidfd_open(b, 0), 41);
	int fc = move_to(pidfd_open(c, 0), 42);
	int fself = move_to(pidfd_open(getpid(), PIDFD_THREAD), 43);
	if (waitpid(c, NULL, 0) != c)
		fail("reap C: %m");
	siginfo_t si;
	memset(&si, 0, sizeof si);
	if (waitid(P_PID, b, &si, WEXITED | WNOWAIT) != 0)
		fail("wait for B to exit: %m");
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0xa11ce};
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fa, &ev) != 0)
		fail("epoll: %m");
	if (readable(fa) || !readable(fb) || !readable(fc))
		fail("before: A readable %d, B %d, C %d", readable(fa), readable(fb), readable(fc));

	pid_t d = test_fork();
	if (d == 0) {
		int fp = move_to(pidfd_open(getppid(), 0), 44);
		test_child_ready();
		test_waitsig();
		if (CORRUPT(5))
			move_to(pidfd_open(getpid(), 0), fp);
		if (CORRUPT(6))
			move_to(pidfd_open(getpid(), 0), fa);
		expect_pid("D's pidfd of its parent", fp, getppid());
		expect_pid("D's pidfd of its sibling A", fa, a);
		expect_pid("D's pidfd of its sibling B, a zombie", fb, b);
		expect_pid("D's pidfd of reaped C", fc, -1);
		expect_pid("D's pidfd of its parent, a thread pidfd", fself, getppid());
		pass();
	}
	test_wait_children_ready();
	test_ready();
	test_waitsig();

	if (CORRUPT(1))
		move_to(pidfd_open(getpid(), 0), fa);
	if (CORRUPT(2))
		move_to(fcntl(fc, F_DUPFD_CLOEXEC, 100), fb);
	if (CORRUPT(3))
		fcntl(fa, F_SETFL, 0);
	if (CORRUPT(4))
		epoll_ctl(ep, EPOLL_CTL_DEL, fa, NULL);

	expect_pid("the pidfd of A", fa, a);
	expect_pid("the pidfd of zombie B", fb, b);
	expect_pid("the pidfd of reaped C", fc, -1);
	expect_pid("its own thread pidfd", fself, getpid());
	if (!(fcntl(fa, F_GETFL) & O_NONBLOCK))
		fail("A's pidfd lost O_NONBLOCK");
	long flags = test_fdinfo_value(fself, "flags", 8);
	if (flags == LONG_MIN || !(flags & PIDFD_THREAD))
		fail("its own pidfd lost PIDFD_THREAD");
	if (readable(fa) || !readable(fb) || !readable(fc))
		fail("after: A readable %d, B %d, C %d", readable(fa), readable(fb), readable(fc));

	/* A ends when told: its pidfd and the epoll set see it, waitid names it. */
	if (write(go[1], "x", 1) != 1)
		fail("tell A: %m");
	struct epoll_event got;
	if (epoll_wait(ep, &got, 1, 10000) != 1 || got.data.u64 != 0xa11ce)
		fail("the epoll set did not see A end");
	memset(&si, 0, sizeof si);
	if (waitid(P_PIDFD, fa, &si, WEXITED) != 0 || si.si_pid != a || si.si_status != 42)
		fail("waitid on A's pidfd: %m (pid %d status %d)", si.si_pid, si.si_status);
	memset(&si, 0, sizeof si);
	if (waitid(P_PIDFD, fb, &si, WEXITED) != 0 || si.si_pid != b || si.si_status != 7)
		fail("waitid on B's pidfd: %m (pid %d status %d)", si.si_pid, si.si_status);
	if (waitid(P_PIDFD, fc, &si, WEXITED | WNOHANG) == 0 || errno != ECHILD)
		fail("waitid on reaped C's pidfd did not fail with ECHILD");
	pass();
}
