/*
 * Pending signals of a multi-threaded process, per thread and process-wide.
 * Every thread blocks SIGUSR1, SIGUSR2, SIGRTMIN+2, +3 and +4 (and the two
 * workers SIGTERM, which is the main thread's). Before READY, worker 1 gets
 * SIGUSR2 (pthread_kill) and SIGRTMIN+2 with value 0x1111
 * (pthread_sigqueue), worker 2 SIGRTMIN+2 with value 0x2222, the main
 * thread SIGRTMIN+4 with value 44, and the process SIGUSR1 (kill) and
 * SIGRTMIN+3 with value 33 (sigqueue): all stay pending.
 *
 * After the SIGTERM, /proc/self/task/TID/status shows each thread's own
 * pending signals in its SigPnd and the process-wide ones in ShdPnd. Then
 * worker 1 unblocks SIGUSR2 and SIGRTMIN+2, worker 2 SIGRTMIN+2 and then
 * SIGUSR1 and SIGRTMIN+3, the main thread SIGRTMIN+4: the handler, which
 * records gettid(), must see every signal exactly once, in that order, in
 * the thread that unblocked it, with the si_code, si_pid and si_value it was
 * sent with (the same signal number with two values on two threads must not
 * mix), and nothing may stay pending.
 *
 * CORRUPT(k), after the SIGTERM: 1 one more SIGRTMIN+3 (value 34) is queued
 * to the process (the masks do not show it); 2 worker 2 gets a SIGUSR2;
 * 3 worker 1's SIGRTMIN+2 is taken and queued again with value 0x1112;
 * 4 the main thread takes the process-wide SIGUSR1; 5 the main thread takes
 * its own SIGRTMIN+4; 6 worker 1 unblocks every signal of the test (it gets
 * the process-wide ones).
 */
#include "lib.h"

#include <pthread.h>
#include <time.h>

#define WAIT_S 5
#define NREC 16

struct rec {
	int sig, code, value;
	pid_t pid, tid;
};

struct worker {
	int idx;
	pthread_t th;
	volatile pid_t tid;
	int ready, go, done;	/* under mu; go 1: unblock, 2: exit */
};

static struct rec recs[NREC];
static int nrec;
static struct worker wk[3];	/* [1] and [2] */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static sigset_t test_set;
static int rt2, rt3, rt4;

static void handler(int sig, siginfo_t *si, void *uc)
{
	int i = __atomic_fetch_add(&nrec, 1, __ATOMIC_SEQ_CST);
	if (i < NREC)
		recs[i] = (struct rec){ sig, si->si_code, si->si_value.sival_int, si->si_pid,
					gettid() };
}

static unsigned long long bit(int sig) { return 1ULL << (sig - 1); }

/* Unblocks a and b (0: none) in the calling thread. */
static void unblock(int a, int b)
{
	sigset_t s;
	sigemptyset(&s);
	if (a)
		sigaddset(&s, a);
	if (b)
		sigaddset(&s, b);
	pthread_sigmask(SIG_UNBLOCK, &s, NULL);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	pthread_mutex_lock(&mu);
	w->tid = gettid();
	w->ready = 1;
	pthread_cond_broadcast(&cv);
	while (!w->go)
		pthread_cond_wait(&cv, &mu);	/* checkpointed here */
	pthread_mutex_unlock(&mu);

	if (w->idx == 1) {
		if (CORRUPT(3)) {
			sigset_t one;
			siginfo_t si;
			struct timespec zero = { 0, 0 };
			sigemptyset(&one);
			sigaddset(&one, rt2);
			sigtimedwait(&one, &si, &zero);
			pthread_sigqueue(pthread_self(), rt2, (union sigval){ .sival_int = 0x1112 });
		}
		if (CORRUPT(6))
			pthread_sigmask(SIG_UNBLOCK, &test_set, NULL);
		unblock(SIGUSR2, rt2);
	} else {
		unblock(rt2, 0);
		unblock(SIGUSR1, rt3);
	}

	pthread_mutex_lock(&mu);
	w->done = 1;
	pthread_cond_broadcast(&cv);
	while (w->go < 2)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	return w;
}

/* Waits, with mu held, until *flag is set; fails after WAIT_S seconds. */
static void wait_flag(int *flag, const char *what)
{
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += WAIT_S;
	while (!*flag)
		if (pthread_cond_timedwait(&cv, &mu, &dl) == ETIMEDOUT && !*flag)
			fail("%s within %d s", what, WAIT_S);
}

static unsigned long long task_mask(pid_t tid, const char *key)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/self/task/%d/status", tid);
	FILE *f = fopen(path, "r");
	if (!f)
		fail("open %s: %m", path);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key))) {
			fclose(f);
			return strtoull(line + strlen(key), NULL, 16);
		}
	fclose(f);
	fail("no %s in %s", key, path);
}

/* Each thread's SigPnd and the ShdPnd seen from each thread. */
static void check_masks(const unsigned long long *want_own, unsigned long long want_shared,
			const char *when)
{
	const pid_t tids[3] = { getpid(), wk[1].tid, wk[2].tid };
	static const char *const names[3] = { "the main thread", "worker 1", "worker 2" };
	for (int i = 0; i < 3; i++) {
		unsigned long long own = task_mask(tids[i], "SigPnd:");
		unsigned long long shd = task_mask(tids[i], "ShdPnd:");
		if (own != want_own[i])
			fail("%s: %s (tid %d) has SigPnd %016llx, expected %016llx", when, names[i],
			     tids[i], own, want_own[i]);
		if (shd != want_shared)
			fail("%s: ShdPnd seen by %s (tid %d) is %016llx, expected %016llx", when,
			     names[i], tids[i], shd, want_shared);
	}
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	rt2 = SIGRTMIN + 2, rt3 = SIGRTMIN + 3, rt4 = SIGRTMIN + 4;
	const pid_t pid = getpid();

	sigemptyset(&test_set);
	sigaddset(&test_set, SIGUSR1);
	sigaddset(&test_set, SIGUSR2);
	sigaddset(&test_set, rt2);
	sigaddset(&test_set, rt3);
	sigaddset(&test_set, rt4);
	struct sigaction sa = { .sa_sigaction = handler, .sa_flags = SA_SIGINFO, .sa_mask = test_set };
	for (int sig = 1; sig < 65; sig++)
		if (sigismember(&test_set, sig) == 1 && sigaction(sig, &sa, NULL))
			fail("sigaction(%d): %m", sig);

	/* The workers are born with SIGTERM and the test's signals blocked;
	 * the main thread keeps only the test's. */
	sigset_t m = test_set;
	sigaddset(&m, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &m, NULL);
	for (int i = 1; i <= 2; i++) {
		wk[i].idx = i;
		if (pthread_create(&wk[i].th, NULL, worker_main, &wk[i]))
			fail("pthread_create failed");
	}
	unblock(SIGTERM, 0);
	pthread_mutex_lock(&mu);
	wait_flag(&wk[1].ready, "worker 1 did not start");
	wait_flag(&wk[2].ready, "worker 2 did not start");
	pthread_mutex_unlock(&mu);

	if (pthread_kill(wk[1].th, SIGUSR2) ||
	    pthread_sigqueue(wk[1].th, rt2, (union sigval){ .sival_int = 0x1111 }) ||
	    pthread_sigqueue(wk[2].th, rt2, (union sigval){ .sival_int = 0x2222 }) ||
	    pthread_sigqueue(pthread_self(), rt4, (union sigval){ .sival_int = 44 }))
		fail("sending a thread its signals failed");
	if (kill(pid, SIGUSR1) || sigqueue(pid, rt3, (union sigval){ .sival_int = 33 }))
		fail("sending the process its signals: %m");

	const unsigned long long want_own[3] = { bit(rt4), bit(SIGUSR2) | bit(rt2), bit(rt2) };
	const unsigned long long want_shared = bit(SIGUSR1) | bit(rt3);
	const unsigned long long none[3] = { 0, 0, 0 };
	check_masks(want_own, want_shared, "before the checkpoint");
	if (nrec)
		fail("%d signal(s) delivered while blocked", nrec);
	test_msg("main %d, worker 1 %d, worker 2 %d", pid, wk[1].tid, wk[2].tid);

	test_ready();
	test_waitsig();

	if (CORRUPT(1))
		sigqueue(pid, rt3, (union sigval){ .sival_int = 34 });
	if (CORRUPT(2))
		pthread_kill(wk[2].th, SIGUSR2);
	if (CORRUPT(4) || CORRUPT(5)) {
		sigset_t one;
		siginfo_t si;
		struct timespec zero = { 0, 0 };
		sigemptyset(&one);
		sigaddset(&one, CORRUPT(4) ? SIGUSR1 : rt4);
		sigtimedwait(&one, &si, &zero);
	}

	check_masks(want_own, want_shared, "after restore");
	if (nrec)
		fail("%d signal(s) delivered while blocked", nrec);

	for (int i = 1; i <= 2; i++) {
		char what[64];
		pthread_mutex_lock(&mu);
		wk[i].go = 1;
		pthread_cond_broadcast(&cv);
		snprintf(what, sizeof(what), "worker %d did not unblock its signals", i);
		wait_flag(&wk[i].done, what);
		pthread_mutex_unlock(&mu);
	}
	unblock(rt4, 0);

	const struct rec want[] = {
		{ SIGUSR2, SI_TKILL, 0, pid, wk[1].tid },
		{ rt2, SI_QUEUE, 0x1111, pid, wk[1].tid },
		{ rt2, SI_QUEUE, 0x2222, pid, wk[2].tid },
		{ SIGUSR1, SI_USER, 0, pid, wk[2].tid },
		{ rt3, SI_QUEUE, 33, pid, wk[2].tid },
		{ rt4, SI_QUEUE, 44, pid, pid },
	};
	const int nwant = sizeof(want) / sizeof(want[0]);
	int n = __atomic_load_n(&nrec, __ATOMIC_SEQ_CST);
	for (int i = 0; i < nwant || i < n; i++) {
		if (i >= n)
			fail("%d signal(s) delivered, expected %d", n, nwant);
		const struct rec *g = &recs[i];
		if (i >= nwant)
			fail("%d signals delivered, expected %d; extra: signal %d code %d value %d "
			     "in tid %d", n, nwant, g->sig, g->code, g->value, g->tid);
		const struct rec *w = &want[i];
		if (g->sig != w->sig || g->code != w->code || g->value != w->value ||
		    g->pid != w->pid || g->tid != w->tid)
			fail("delivery %d: signal %d code %d value %#x pid %d in tid %d, expected "
			     "signal %d code %d value %#x pid %d in tid %d", i, g->sig, g->code,
			     g->value, g->pid, g->tid, w->sig, w->code, w->value, w->pid, w->tid);
	}
	check_masks(none, 0, "after the deliveries");

	pthread_mutex_lock(&mu);
	wk[1].go = wk[2].go = 2;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	for (int i = 1; i <= 2; i++) {
		struct timespec dl;
		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_sec += WAIT_S;
		int r = pthread_timedjoin_np(wk[i].th, NULL, &dl);
		if (r)
			fail("pthread_join of worker %d: %s", i, strerror(r));
	}
	pass();
}
