/*
 * Blocked in poll(2) that the kernel resumed through restart_syscall: a
 * thread waits in poll() with no timeout on a pipe, and a child stops and
 * continues the process (SIGSTOP, SIGCONT) before READY. The kernel then
 * resumes the poll through restart_syscall, and that is all a later
 * interruption reports (/proc/self/task/TID/syscall shows it: checked
 * before READY); a new process has no restart block, and restart_syscall
 * there fails with EINTR (`tail -f` died of it after a move). The
 * --leave-running variant is checkpointed twice while it runs, so its
 * poll has been resumed by the engine too.
 *
 * After the SIGTERM (handled by the main thread: the poller blocks it) the
 * main thread writes one byte to the pipe: the poll must return 1 with
 * POLLIN, never -1 (EINTR), and not before the byte.
 *
 * CORRUPT(1), after the SIGTERM: the poll's result is taken as EINTR.
 */
#include "lib.h"

#include <poll.h>
#include <pthread.h>
#include <sys/syscall.h>

static int pipefd[2];
static volatile pid_t poll_tid;
static volatile int poll_ret = -2, poll_errno, poll_revents;

static void *poller(void *arg)
{
	(void)arg;
	poll_tid = (pid_t)syscall(SYS_gettid);
	struct pollfd p = { pipefd[0], POLLIN, 0 };
	int r = poll(&p, 1, -1);
	poll_errno = errno;
	poll_revents = p.revents;
	poll_ret = r;
	return NULL;
}

/* The system call thread `tid` of this process is in, or -1. */
static long syscall_of(pid_t tid)
{
	char path[64], buf[256];
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long nr = -1;
	if (!fgets(buf, sizeof(buf), f) || sscanf(buf, "%ld", &nr) != 1)
		nr = -1;
	fclose(f);
	return nr;
}

static void wait_syscall(pid_t tid, long nr, const char *what)
{
	for (int i = 0; i < 5000; i++) {
		if (syscall_of(tid) == nr)
			return;
		usleep(1000);
	}
	fail("%s: thread %d is in system call %ld, not %ld", what, (int)tid, syscall_of(tid), nr);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	if (pipe(pipefd))
		fail("pipe: %m");

	/* Only the main thread takes the SIGTERM. */
	sigset_t term, old;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &term, &old);
	pthread_t pt;
	if (pthread_create(&pt, NULL, poller, NULL))
		fail("pthread_create");
	while (poll_tid == 0)
		usleep(1000);
	wait_syscall(poll_tid, SYS_poll, "before the stop");

	pid_t me = getpid();
	pid_t kid = test_fork();
	if (kid == 0) {
		kill(me, SIGSTOP);
		usleep(50000);
		kill(me, SIGCONT);
		test_child_ready();
		test_waitsig();
		pass();
	}
	test_wait_children_ready();
	wait_syscall(poll_tid, SYS_restart_syscall, "after SIGSTOP and SIGCONT");
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	test_ready();

	test_waitsig();
	if (poll_ret != -2)
		fail("the poll returned %d before its pipe was written (%s)", poll_ret, strerror(poll_errno));
	if (write(pipefd[1], "x", 1) != 1)
		fail("write: %m");
	pthread_join(pt, NULL);
	if (CORRUPT(1))
		poll_ret = -1, poll_errno = EINTR;
	if (poll_ret != 1 || !(poll_revents & POLLIN))
		fail("the poll returned %d (%s), revents %#x: want 1 with POLLIN", poll_ret,
		     poll_ret < 0 ? strerror(poll_errno) : "no error", poll_revents);
	test_msg("poll returned 1 with POLLIN");
	pass();
}
