/*
 * File locks survive, held by the same processes, through the same open
 * files:
 *   the root: flock(LOCK_EX) on a.lock (its child shares the open file);
 *     POSIX locks on b.lock: write on bytes 10-19, read from byte 100 to
 *     the end of the file; an OFD write lock on c.lock, whole file;
 *   child K: its own POSIX write lock on b.lock, bytes 30-39 (its own fd).
 * Checked after the restore by a checker process forked then, which holds
 * no lock: a new open of a.lock cannot be flock()ed; F_GETLK on b.lock
 * finds the root's write lock on 10-19 (l_pid: the root), nothing on
 * 20-29, K's write lock on 30-39 (l_pid: K), and the root's read lock at
 * 100 and at 1000000 (shared: a read lock there is granted, a write lock
 * is not); F_OFD_GETLK on c.lock finds an OFD write lock (l_pid -1).
 * Then the owners still own them: the root unlocks its b.lock range
 * 10-19 and the checker, asked again, may lock it.
 *
 * CORRUPT(k), after the SIGTERM: 1 the root lets go of its flock; 2 the
 * root unlocks b.lock 10-19; 3 K unlocks its range; 4 the root unlocks
 * c.lock's OFD lock; 5 the root unlocks its read lock from byte 100.
 */
#include "lib.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>

static int fa, fb, fc;

static void lock_range(int fd, int cmd, short type, off_t start, off_t len, const char *what)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };
	if (fcntl(fd, cmd, &fl))
		fail("%s: %m", what);
}

/* The lock F_GETLK (or F_OFD_GETLK) finds for a `type` lock on byte `at`:
 * its type (F_UNLCK for none) and holder. */
static short probe(int fd, int cmd, short type, off_t at, pid_t *holder)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = at, .l_len = 1 };
	if (fcntl(fd, cmd, &fl))
		fail("F_GETLK at %ld: %m", (long)at);
	*holder = fl.l_pid;
	return fl.l_type;
}

/* In a fresh process (no lock of its own): 0 if every lock is where it
 * should be, else a number naming the first that is not. */
static int check_from_outside(pid_t root, pid_t k, int after_unlock)
{
	pid_t c = fork();
	if (c < 0)
		fail("fork: %m");
	if (c == 0) {
		pid_t who;
		int a = open("a.lock", O_RDWR);
		int b = open("b.lock", O_RDWR);
		int cc = open("c.lock", O_RDWR);
		if (a < 0 || b < 0 || cc < 0)
			_exit(90);
		if (after_unlock)
			_exit(probe(b, F_GETLK, F_WRLCK, 12, &who) == F_UNLCK ? 0 : 20);
		if (flock(a, LOCK_EX | LOCK_NB) == 0 || errno != EWOULDBLOCK)
			_exit(10);
		if (probe(b, F_GETLK, F_RDLCK, 15, &who) != F_WRLCK || who != root)
			_exit(11);
		if (probe(b, F_GETLK, F_WRLCK, 25, &who) != F_UNLCK)
			_exit(12);
		if (probe(b, F_GETLK, F_RDLCK, 35, &who) != F_WRLCK || who != k)
			_exit(13);
		if (probe(b, F_GETLK, F_RDLCK, 100, &who) != F_UNLCK)
			_exit(14);
		if (probe(b, F_GETLK, F_WRLCK, 1000000, &who) != F_RDLCK || who != root)
			_exit(15);
		if (probe(cc, F_OFD_GETLK, F_RDLCK, 0, &who) != F_WRLCK || who != -1)
			_exit(16);
		_exit(0);
	}
	int status;
	if (waitpid(c, &status, 0) != c)
		fail("waitpid checker: %m");
	return WIFEXITED(status) ? WEXITSTATUS(status) : 99;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	fa = open("a.lock", O_RDWR | O_CREAT | O_TRUNC, 0600);
	fb = open("b.lock", O_RDWR | O_CREAT | O_TRUNC, 0600);
	fc = open("c.lock", O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fa < 0 || fb < 0 || fc < 0)
		fail("open: %m");
	if (flock(fa, LOCK_EX))
		fail("flock: %m");
	lock_range(fb, F_SETLK, F_WRLCK, 10, 10, "root's write lock");
	lock_range(fb, F_SETLK, F_RDLCK, 100, 0, "root's read lock");
	lock_range(fc, F_OFD_SETLK, F_WRLCK, 0, 0, "OFD lock");

	int done[2];  /* K exits once the root closes its end */
	if (pipe(done))
		fail("pipe: %m");
	pid_t k = test_fork();
	if (k == 0) {
		close(done[1]);
		int own = open("b.lock", O_RDWR);
		if (own < 0)
			fail("child open: %m");
		lock_range(own, F_SETLK, F_WRLCK, 30, 10, "child's write lock");
		test_child_ready();
		test_waitsig();
		if (CORRUPT(3))
			lock_range(own, F_SETLK, F_UNLCK, 30, 10, "corrupt 3");
		char c;
		while (read(done[0], &c, 1) < 0 && errno == EINTR)
			;  /* holds its lock until the root is done */
		pass();
	}
	close(done[0]);
	test_wait_children_ready();
	int early = check_from_outside(getpid(), k, 0);
	if (early)
		fail("before the checkpoint, the locks are not as set (check %d)", early);
	test_ready();
	test_waitsig();

	if (CORRUPT(1))
		flock(fa, LOCK_UN);
	if (CORRUPT(2))
		lock_range(fb, F_SETLK, F_UNLCK, 10, 10, "corrupt 2");
	if (CORRUPT(4))
		lock_range(fc, F_OFD_SETLK, F_UNLCK, 0, 0, "corrupt 4");
	if (CORRUPT(5))
		lock_range(fb, F_SETLK, F_UNLCK, 100, 0, "corrupt 5");
	if (CORRUPT(3))
		usleep(200000);  /* K's unlock lands first */
	int bad = check_from_outside(getpid(), k, 0);
	if (bad)
		fail("after the restore, a lock is not where it was (check %d: 10 flock, 11-15 POSIX, 16 OFD)", bad);
	lock_range(fb, F_SETLK, F_UNLCK, 10, 10, "the root's unlock");
	if (check_from_outside(getpid(), k, 1))
		fail("the root's POSIX lock is not the root's any more: its unlock did not free it");
	close(done[1]);
	pass();
}
