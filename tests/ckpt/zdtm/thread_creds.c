/*
 * Credentials are per thread in the kernel; glibc keeps them equal, but a
 * raw setresuid/setresgid changes only the calling thread. A thread of a
 * root process takes uids (1000, 1001, 0) and gids (2000, 2001, 0) that
 * way, while the main thread stays root; after the restore each thread
 * reports its own (the thread through a pipe when asked).
 *
 * CORRUPT(k), after the SIGTERM: 1 the thread goes back to root (allowed:
 * its saved uid is 0); 2 the main thread takes the thread's uids.
 */
#include "lib.h"

#include <pthread.h>
#include <sys/syscall.h>

static int ask[2], answer[2];

static void *worker(void *arg)
{
	(void)arg;
	if (syscall(SYS_setresgid, 2000, 2001, 0) || syscall(SYS_setresuid, 1000, 1001, 0))
		fail("setresuid in the thread: %m");
	char c;
	for (int asked = 0;; asked++) {
		if (read(ask[0], &c, 1) != 1)
			return NULL;
		if (CORRUPT(1) && asked > 0)	/* after the SIGTERM only */
			syscall(SYS_setresuid, 0, 0, 0);
		uid_t r, e, s;
		gid_t gr, ge, gs;
		syscall(SYS_getresuid, &r, &e, &s);
		syscall(SYS_getresgid, &gr, &ge, &gs);
		unsigned v[6] = { r, e, s, gr, ge, gs };
		if (write(answer[1], v, sizeof(v)) != sizeof(v))
			return NULL;
	}
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	if (getuid() != 0) {
		test_msg("needs root");
		pass();
	}
	if (pipe(ask) || pipe(answer))
		fail("pipe: %m");
	pthread_t th;
	if (pthread_create(&th, NULL, worker, NULL))
		fail("pthread_create");
	/* Wait until the thread has dropped: ask once before READY. */
	unsigned v[6];
	if (write(ask[1], "?", 1) != 1 || read(answer[0], v, sizeof(v)) != sizeof(v))
		fail("the thread does not answer");
	if (v[0] != 1000 || v[1] != 1001 || v[2] != 0)
		fail("before: the thread's uids are %u %u %u", v[0], v[1], v[2]);

	test_ready();
	test_waitsig();

	if (CORRUPT(2))
		syscall(SYS_setresuid, 1000, 1001, 0);
	uid_t r, e, s;
	syscall(SYS_getresuid, &r, &e, &s);
	if (r != 0 || e != 0 || s != 0)
		fail("the main thread's uids are %u %u %u, not root's", r, e, s);
	if (write(ask[1], "?", 1) != 1 || read(answer[0], v, sizeof(v)) != sizeof(v))
		fail("the thread does not answer after the restore");
	if (v[0] != 1000 || v[1] != 1001 || v[2] != 0 || v[3] != 2000 || v[4] != 2001 || v[5] != 0)
		fail("the thread's ids are uid %u %u %u gid %u %u %u, not 1000 1001 0 / 2000 2001 0", v[0], v[1], v[2],
		     v[3], v[4], v[5]);
	pass();
}
