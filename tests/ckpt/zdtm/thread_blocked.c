/*
 * Threads asleep in system calls when the process is checkpointed: one in
 * pthread_cond_wait (futex, no timeout), one in pthread_cond_timedwait with
 * an absolute CLOCK_REALTIME deadline a day away, one in nanosleep(3600 s),
 * one in read() on a pipe and one in epoll_wait (no timeout) on a set
 * holding an eventfd and another pipe's read end. Before READY every thread
 * is seen asleep (State S in /proc/self/task/TID/stat) in its system call
 * (/proc/self/task/TID/syscall).
 *
 * After the SIGTERM every thread must still be asleep (restart_syscall is
 * also accepted for the two that sleep with a timeout), none may have
 * returned yet; then each is woken and must return exactly what wakes it:
 * the cond waiters see their predicate (the timed one with no ETIMEDOUT),
 * the sleeper gets EINTR with 3000-3600 s left, after its SIGUSR1 handler ran
 * once, in the sleeper; the reader gets the 3000 bytes written (no EINTR, no
 * EOF); epoll_wait reports only the eventfd, with its data value, and the
 * eventfd holds the value written (epoll_wait may fail with EINTR after a
 * stop, signal(7): it is retried). Each thread must answer within 5 s and
 * be joined within 5 s.
 *
 * CORRUPT(k), after the SIGTERM: 1 one byte of the pipe's data differs;
 * 2 the plain cond waiter is never woken (it must not answer within 5 s);
 * 3 the timed cond waiter reports ETIMEDOUT; 4 the SIGUSR1 handler also
 * runs in the main thread; 5 the eventfd gets another value; 6 the other
 * pipe is written instead of the eventfd; 7 the sleeper is woken before
 * the check that every thread is still asleep.
 */
#include "lib.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>

#define WAIT_S 5
#define SLEEP_S 3600
#define LEN 3000
#define SEED 0x7b10cULL
#define PRED_A 0xa11ce
#define PRED_B 0xb0b
#define EVENT_VAL 7
#define D_EVENT 0xe7e7e7e7e7e7e7e7ULL
#define D_OTHER 0x0707070707070707ULL

enum { B_COND, B_TIMED, B_SLEEP, B_READ, B_EPOLL, NBLK };

struct blk {
	const char *what;
	void *(*fn)(void *);
	long nr[4];		/* the system calls it sleeps in, -1 ends */
	int timed;		/* may show restart_syscall after a restore */
	pthread_t th;
	volatile pid_t tid;
	int done;		/* under rm */
	char err[256], note[128];
};

static pthread_mutex_t rm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rc = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t ma = PTHREAD_MUTEX_INITIALIZER, mb = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ca = PTHREAD_COND_INITIALIZER, cb = PTHREAD_COND_INITIALIZER;
static int pred_a, pred_b;
static int pipe_fds[2], other_fds[2], efd, epfd;
static int usr1_calls;
static volatile pid_t usr1_tid;

static void *cond_waiter(void *arg);
static void *timed_waiter(void *arg);
static void *sleeper(void *arg);
static void *reader(void *arg);
static void *epoller(void *arg);

static struct blk blk[NBLK] = {
	[B_COND] = { "the cond waiter", cond_waiter, { SYS_futex, -1 }, 0 },
	[B_TIMED] = { "the timed cond waiter", timed_waiter, { SYS_futex, -1 }, 1 },
	[B_SLEEP] = { "the sleeper", sleeper, {
#ifdef SYS_nanosleep
		SYS_nanosleep,
#endif
		SYS_clock_nanosleep, -1 }, 1 },
	[B_READ] = { "the reader", reader, { SYS_read, -1 }, 0 },
	[B_EPOLL] = { "the epoll waiter", epoller, {
#ifdef SYS_epoll_wait
		SYS_epoll_wait,
#endif
#ifdef SYS_epoll_pwait2
		SYS_epoll_pwait2,
#endif
		SYS_epoll_pwait, -1 }, 0 },
};

/* Records the thread's first error. */
static void berr(struct blk *b, const char *fmt, ...)
{
	va_list ap;
	if (b->err[0])
		return;
	va_start(ap, fmt);
	vsnprintf(b->err, sizeof(b->err), fmt, ap);
	va_end(ap);
}

static void finish(struct blk *b)
{
	pthread_mutex_lock(&rm);
	b->done = 1;
	pthread_cond_broadcast(&rc);
	pthread_mutex_unlock(&rm);
}

static void on_usr1(int sig)
{
	__atomic_add_fetch(&usr1_calls, 1, __ATOMIC_SEQ_CST);
	usr1_tid = gettid();
}

static void *cond_waiter(void *arg)
{
	struct blk *b = arg;
	pthread_mutex_lock(&ma);
	b->tid = gettid();
	while (!pred_a)
		pthread_cond_wait(&ca, &ma);
	if (pred_a != PRED_A)
		berr(b, "predicate %#x, expected %#x", pred_a, PRED_A);
	pthread_mutex_unlock(&ma);
	finish(b);
	return b;
}

static void *timed_waiter(void *arg)
{
	struct blk *b = arg;
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 24 * 3600;
	pthread_mutex_lock(&mb);
	b->tid = gettid();
	int r = 0;
	while (!pred_b && !r)
		r = pthread_cond_timedwait(&cb, &mb, &dl);
	if (CORRUPT(3))
		r = ETIMEDOUT;
	if (r)
		berr(b, "pthread_cond_timedwait (deadline a day away): %s", strerror(r));
	else if (pred_b != PRED_B)
		berr(b, "predicate %#x, expected %#x", pred_b, PRED_B);
	pthread_mutex_unlock(&mb);
	finish(b);
	return b;
}

static void *sleeper(void *arg)
{
	struct blk *b = arg;
	b->tid = gettid();
	struct timespec req = { SLEEP_S, 0 }, rem = { -1, -1 };
	int r = nanosleep(&req, &rem);
	int e = errno;
	int calls = __atomic_load_n(&usr1_calls, __ATOMIC_SEQ_CST);
	if (r == 0)
		berr(b, "nanosleep(%d s) returned 0", SLEEP_S);
	else if (e != EINTR)
		berr(b, "nanosleep: %s", strerror(e));
	else if (calls != 1 || usr1_tid != b->tid)
		berr(b, "nanosleep returned EINTR after %d SIGUSR1 handler call(s), the last in "
		     "tid %d", calls, usr1_tid);
	else if (rem.tv_nsec < 0 || rem.tv_nsec >= 1000000000 || rem.tv_sec > SLEEP_S ||
		 rem.tv_sec < SLEEP_S - 600)
		berr(b, "nanosleep's remaining time is %ld.%09ld s of %d", (long)rem.tv_sec,
		     rem.tv_nsec, SLEEP_S);
	snprintf(b->note, sizeof(b->note), "%ld.%03ld s of %d s left", (long)rem.tv_sec,
		 rem.tv_nsec / 1000000, SLEEP_S);
	finish(b);
	return b;
}

static void *reader(void *arg)
{
	struct blk *b = arg;
	unsigned char buf[LEN + 1];
	size_t got = 0;
	b->tid = gettid();
	while (got < LEN) {
		ssize_t n = read(pipe_fds[0], buf + got, sizeof(buf) - got);
		if (n < 0) {
			berr(b, "read: %s after %zu bytes", strerror(errno), got);
			break;
		}
		if (n == 0) {
			berr(b, "read: EOF after %zu bytes", got);
			break;
		}
		got += n;
	}
	long off = got == LEN ? test_check_fill(buf, LEN, SEED) : -1;
	if (got > LEN)
		berr(b, "read %zu bytes, %d were written", got, LEN);
	else if (off >= 0)
		berr(b, "the data read differs at offset %ld", off);
	finish(b);
	return b;
}

static void *epoller(void *arg)
{
	struct blk *b = arg;
	struct epoll_event ev[4];
	int n, eintr = 0;
	b->tid = gettid();
	while ((n = epoll_wait(epfd, ev, 4, -1)) < 0 && errno == EINTR)
		eintr++;
	uint64_t val = 0;
	if (n < 0)
		berr(b, "epoll_wait: %s", strerror(errno));
	else if (n != 1 || ev[0].data.u64 != D_EVENT || ev[0].events != EPOLLIN)
		berr(b, "epoll_wait: %d event(s), the first %#x with data %#llx; expected "
		     "EPOLLIN with data %#llx", n, ev[0].events,
		     (unsigned long long)ev[0].data.u64, D_EVENT);
	else if (read(efd, &val, sizeof(val)) != sizeof(val))
		berr(b, "read of the eventfd: %s", strerror(errno));
	else if (val != EVENT_VAL)
		berr(b, "the eventfd holds %llu, %d was written", (unsigned long long)val,
		     EVENT_VAL);
	snprintf(b->note, sizeof(b->note), "%d EINTR", eintr);
	finish(b);
	return b;
}

/* 1 if b sleeps in one of its system calls; else what it shows, in seen. */
static int asleep(struct blk *b, int restored, char *seen, size_t len)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", b->tid);
	FILE *f = fopen(path, "r");
	char state = '?';
	if (f) {
		if (fgets(buf, sizeof(buf), f) && strrchr(buf, ')'))
			state = strrchr(buf, ')')[2];
		fclose(f);
	}
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", b->tid);
	long nr = -2;		/* -2: unreadable */
	f = fopen(path, "r");
	if (f) {
		if (fgets(buf, sizeof(buf), f))
			nr = strncmp(buf, "running", 7) ? strtol(buf, NULL, 10) : -3;
		fclose(f);
	}
	snprintf(seen, len, "state %c, system call %ld", state, nr);
	if (state != 'S')
		return 0;
	if (nr == -2)
		return 1;
	for (int i = 0; b->nr[i] >= 0; i++)
		if (nr == b->nr[i])
			return 1;
	return restored && b->timed && nr == SYS_restart_syscall;
}

static void check_asleep(int restored)
{
	char seen[96];
	double t0 = test_now();
	for (int i = 0; i < NBLK; i++) {
		for (;;) {
			pthread_mutex_lock(&rm);
			int done = blk[i].done;
			pthread_mutex_unlock(&rm);
			if (done)
				fail("%s (tid %d) returned before it was woken%s%s", blk[i].what,
				     blk[i].tid, blk[i].err[0] ? ": " : "", blk[i].err);
			if (blk[i].tid && asleep(&blk[i], restored, seen, sizeof(seen)))
				break;
			if (test_now() - t0 > WAIT_S)
				fail("%s (tid %d) is not asleep in its system call within %d s%s: %s",
				     blk[i].what, blk[i].tid, WAIT_S,
				     restored ? " of the SIGTERM" : "", seen);
			usleep(10000);
		}
	}
}

static int all_done(void)
{
	for (int i = 0; i < NBLK; i++)
		if (!blk[i].done)
			return 0;
	return 1;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	if (pipe(pipe_fds) || pipe(other_fds))
		fail("pipe: %m");
	efd = eventfd(0, EFD_NONBLOCK);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (efd < 0 || epfd < 0)
		fail("eventfd/epoll: %m");
	struct epoll_event ev = { EPOLLIN, { .u64 = D_EVENT } };
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, efd, &ev))
		fail("epoll_ctl: %m");
	ev = (struct epoll_event){ EPOLLIN, { .u64 = D_OTHER } };
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, other_fds[0], &ev))
		fail("epoll_ctl: %m");
	struct sigaction sa = { .sa_handler = on_usr1 };
	sigaction(SIGUSR1, &sa, NULL);

	/* Every thread blocks SIGTERM (it is the main thread's) and all but
	 * the sleeper SIGUSR1. */
	sigset_t all, old, mask;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (int i = 0; i < NBLK; i++) {
		sigemptyset(&mask);
		sigaddset(&mask, SIGTERM);
		if (i != B_SLEEP)
			sigaddset(&mask, SIGUSR1);
		pthread_sigmask(SIG_SETMASK, &mask, NULL);
		if (pthread_create(&blk[i].th, NULL, blk[i].fn, &blk[i]))
			fail("pthread_create failed");
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	check_asleep(0);
	for (int i = 0; i < NBLK; i++)
		test_msg("%s: tid %d", blk[i].what, blk[i].tid);

	test_ready();
	test_waitsig();

	if (CORRUPT(7)) {
		pthread_kill(blk[B_SLEEP].th, SIGUSR1);
		pthread_mutex_lock(&rm);
		struct timespec dl;
		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_sec += WAIT_S;
		while (!blk[B_SLEEP].done && !pthread_cond_timedwait(&rc, &rm, &dl))
			;
		pthread_mutex_unlock(&rm);
	}
	check_asleep(1);

	pthread_mutex_lock(&ma);
	if (!CORRUPT(2))
		pred_a = PRED_A;
	pthread_cond_broadcast(&ca);
	pthread_mutex_unlock(&ma);

	pthread_mutex_lock(&mb);
	pred_b = PRED_B;
	pthread_cond_broadcast(&cb);
	pthread_mutex_unlock(&mb);

	if (CORRUPT(4))
		pthread_kill(pthread_self(), SIGUSR1);
	if (pthread_kill(blk[B_SLEEP].th, SIGUSR1))
		fail("pthread_kill failed");

	unsigned char buf[LEN];
	test_fill(buf, LEN, SEED);
	if (CORRUPT(1))
		buf[LEN / 2] ^= 0x20;
	if (write(pipe_fds[1], buf, LEN) != LEN)
		fail("write to the pipe: %m");

	uint64_t val = CORRUPT(5) ? EVENT_VAL + 1 : EVENT_VAL;
	if (CORRUPT(6)) {
		if (write(other_fds[1], "x", 1) != 1)
			fail("write to the other pipe: %m");
	} else if (write(efd, &val, sizeof(val)) != sizeof(val)) {
		fail("write to the eventfd: %m");
	}

	pthread_mutex_lock(&rm);
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += WAIT_S;
	while (!all_done())
		if (pthread_cond_timedwait(&rc, &rm, &dl) == ETIMEDOUT)
			break;
	for (int i = 0; i < NBLK; i++)
		if (!blk[i].done)
			fail("%s (tid %d) did not answer within %d s of its wake-up", blk[i].what,
			     blk[i].tid, WAIT_S);
	pthread_mutex_unlock(&rm);
	for (int i = 0; i < NBLK; i++)
		if (blk[i].err[0])
			fail("%s (tid %d): %s", blk[i].what, blk[i].tid, blk[i].err);

	for (int i = 0; i < NBLK; i++) {
		void *ret;
		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_sec += WAIT_S;
		int r = pthread_timedjoin_np(blk[i].th, &ret, &dl);
		if (r)
			fail("pthread_join of %s (tid %d): %s", blk[i].what, blk[i].tid, strerror(r));
	}
	int calls = __atomic_load_n(&usr1_calls, __ATOMIC_SEQ_CST);
	if (calls != 1 || usr1_tid != blk[B_SLEEP].tid)
		fail("the SIGUSR1 handler ran %d time(s), the last in tid %d; expected once in "
		     "the sleeper %d", calls, usr1_tid, blk[B_SLEEP].tid);
	test_msg("sleeper: %s; epoll waiter: %s", blk[B_SLEEP].note, blk[B_EPOLL].note);
	pass();
}
