/*
 * Per-thread state of a multi-threaded process. Besides the main thread,
 * three threads each set up, before READY, state of their own: a __thread
 * value, a signal mask (SIGTERM, SIGUSR1 and SIGRTMIN+i: SIGTERM stays for
 * the main thread), an alternate signal stack (its own address and size,
 * SS_AUTODISARM on thread 2), a CPU (when the process may use two: thread 1
 * on one, threads 0 and 2 on another), a name (pthread_setname_np) and a
 * rounding mode (x87 control word and MXCSR); thread 0 also holds a robust
 * mutex. They then wait on a condition variable.
 *
 * After the SIGTERM each thread checks, on its own, that its tid (gettid),
 * thread pointer, __thread value and address, signal mask (pthread_sigmask
 * and SigBlk in /proc/self/task/TID/status), alternate stack, affinity,
 * comm, rounding mode (and 1/3 computed under it), robust list head
 * (get_robust_list), clear_child_tid address (PR_GET_TID_ADDRESS) and rseq
 * registration (re-registering says EBUSY, cpu_id follows getcpu and the
 * thread's CPU) are unchanged. The main thread checks that /proc/self/task
 * lists exactly the four tids, lets thread 0 exit holding the robust mutex
 * and locks it: EOWNERDEAD proves the kernel walked thread 0's restored
 * robust list at its exit. Then pthread_join of every thread, a wait on the
 * tid word the kernel clears at the thread's exit (CLONE_CHILD_CLEARTID),
 * must end. Every wait after the SIGTERM gives up after 5 s.
 *
 * CORRUPT(k), after the SIGTERM: 1 thread 1's __thread value changes;
 * 2 thread 1 unblocks SIGRTMIN+1; 3 thread 2's alternate stack loses
 * SS_AUTODISARM; 4 thread 0's alternate stack shrinks; 5 thread 1 is
 * renamed; 6 thread 0 may run on every CPU (on a 1-CPU machine: its
 * __thread value changes); 7 thread 2 unregisters rseq (without rseq: its
 * __thread value changes); 8 thread 1's rounding mode changes; 9 only
 * thread 0's MXCSR changes (flush-to-zero; elsewhere than x86-64 its
 * rounding mode); 10 thread 1's checks run in a new thread (another tid);
 * 11 a fifth thread appears; 12 thread 0's robust list head moves;
 * 13 thread 2's clear_child_tid address moves; 14 thread 0 unlocks the
 * robust mutex before it exits; 15 thread 0's robust list is emptied just
 * before it exits (the lock times out); 16 thread 1's clear_child_tid
 * address moves just before it exits (its join times out).
 */
#include "lib.h"

#include <dirent.h>
#include <fenv.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <time.h>

#ifndef PR_GET_TID_ADDRESS
#define PR_GET_TID_ADDRESS 40
#endif
#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)
#endif

#define NTHR 3
#define WAIT_S 5
#define ALT_BASE (48 * 1024)
#define ALT_STEP (16 * 1024)
#define ALT_MAX (ALT_BASE + NTHR * ALT_STEP)
#define TLS_MAIN 0x6d61696e6d61696eULL
#define TLS_THR(i) (0x7115000000000000ULL + 0x1111111ULL * ((i) + 1))

struct thr {
	int idx;
	pthread_t th;
	pid_t tid;
	void *tp, *tls_addr;
	sigset_t mask;
	stack_t alt;
	int cpu;		/* -1: affinity not checked */
	char name[16];
	int round;
	double third;
	unsigned mxcsr;
	void *robust_head;
	size_t robust_len;
	void *tid_addr;
	int rseq_len;		/* 0: glibc did not register rseq */
	int ready, done;	/* under mu */
	char err[512];
};

static __thread uint64_t tls_val;
static char altmem[NTHR][ALT_MAX] __attribute__((aligned(4096)));
static const int rounds[NTHR] = { FE_TOWARDZERO, FE_DOWNWARD, FE_UPWARD };
static struct thr thr[NTHR];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int phase;		/* 1: check yourselves, 2: exit; under mu */
static pthread_mutex_t robust;
static struct robust_list_head empty_robust = { .list = { &empty_robust.list } };
static int dummy_tid_word;

/* Records the thread's first error; returns -1. */
static int terr(struct thr *t, const char *fmt, ...)
{
	va_list ap;
	if (t->err[0])
		return -1;
	va_start(ap, fmt);
	vsnprintf(t->err, sizeof(t->err), fmt, ap);
	va_end(ap);
	return -1;
}

static double third(void)
{
	volatile double one = 1, three = 3;
	return one / three;
}

/* MXCSR without its sticky exception flags. */
static unsigned mxcsr(void)
{
#ifdef __x86_64__
	return __builtin_ia32_stmxcsr() & ~0x3fU;
#else
	return 0;
#endif
}

static struct rseq *rseq_area(void)
{
	return (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
}

/* The registered length (re-registering with it says EBUSY), 0 if
 * re-registering succeeded (it was not registered), or -errno. */
static int rseq_registered_len(void)
{
	int cand[2] = { 32, (int)__rseq_size };
	for (int i = 0; i < 2; i++) {
		if (syscall(SYS_rseq, rseq_area(), cand[i], 0, RSEQ_SIG) == 0)
			return 0;
		if (errno == EBUSY)
			return cand[i];
	}
	return -errno;
}

static unsigned sys_getcpu(void)
{
	unsigned cpu = ~0U;
	syscall(SYS_getcpu, &cpu, NULL, NULL);
	return cpu;
}

static void *robust_head(size_t *len)
{
	void *head = NULL;
	if (syscall(SYS_get_robust_list, 0, &head, len))
		return NULL;
	return head;
}

static void *tid_address(void)
{
	void *addr = NULL;
	if (prctl(PR_GET_TID_ADDRESS, (unsigned long)&addr, 0, 0, 0))
		return NULL;
	return addr;
}

/* The task's line `key` of /proc/self/task/TID/status, or "". */
static void task_field(pid_t tid, const char *key, char *out, size_t len)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/self/task/%d/status", tid);
	out[0] = 0;
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key))) {
			char *v = line + strlen(key);
			v += strspn(v, " \t");
			v[strcspn(v, "\n")] = 0;
			snprintf(out, len, "%s", v);
			break;
		}
	fclose(f);
}

static void task_comm(pid_t tid, char *out, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/task/%d/comm", tid);
	out[0] = 0;
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	if (!fgets(out, len, f))
		out[0] = 0;
	out[strcspn(out, "\n")] = 0;
	fclose(f);
}

static unsigned long long mask_bits(const sigset_t *s)
{
	unsigned long long m = 0;
	for (int sig = 1; sig <= 64; sig++)
		if (sigismember(s, sig) == 1)
			m |= 1ULL << (sig - 1);
	return m;
}

static int setup(struct thr *t)
{
	int i = t->idx;
	t->tid = gettid();
	tls_val = TLS_THR(i);
	t->tls_addr = (void *)&tls_val;
	t->tp = __builtin_thread_pointer();

	sigemptyset(&t->mask);
	sigaddset(&t->mask, SIGTERM);
	sigaddset(&t->mask, SIGUSR1);
	sigaddset(&t->mask, SIGRTMIN + i);
	if (pthread_sigmask(SIG_SETMASK, &t->mask, NULL))
		return terr(t, "pthread_sigmask failed");

	t->alt.ss_sp = altmem[i];
	t->alt.ss_size = ALT_BASE + i * ALT_STEP;
	t->alt.ss_flags = i == 2 ? (int)SS_AUTODISARM : 0;
	if (sigaltstack(&t->alt, NULL))
		return terr(t, "sigaltstack: %s", strerror(errno));

	if (t->cpu >= 0) {
		cpu_set_t one;
		CPU_ZERO(&one);
		CPU_SET(t->cpu, &one);
		if (sched_setaffinity(0, sizeof(one), &one))
			return terr(t, "sched_setaffinity(CPU %d): %s", t->cpu, strerror(errno));
	}

	snprintf(t->name, sizeof(t->name), "zdtm-thr%d", i);
	if (pthread_setname_np(pthread_self(), t->name))
		return terr(t, "pthread_setname_np failed");

	t->round = rounds[i];
	if (fesetround(t->round))
		return terr(t, "fesetround(%#x) failed", t->round);
	t->third = third();
	t->mxcsr = mxcsr();

	t->robust_head = robust_head(&t->robust_len);
	if (!t->robust_head)
		return terr(t, "get_robust_list: %s", strerror(errno));
	t->tid_addr = tid_address();
	if (!t->tid_addr)
		return terr(t, "PR_GET_TID_ADDRESS: %s", strerror(errno));

	if (__rseq_size) {
		t->rseq_len = rseq_registered_len();
		if (t->rseq_len <= 0)
			return terr(t, "rseq re-registration: %s, expected EBUSY",
				    t->rseq_len ? strerror(-t->rseq_len) : "success");
	}

	if (i == 0 && pthread_mutex_lock(&robust))
		return terr(t, "locking the robust mutex failed");
	return 0;
}

/* The checks after the SIGTERM, in the thread itself. */
static int check_self(struct thr *t)
{
	pid_t tid = gettid();
	if (tid != t->tid)
		return terr(t, "gettid() is %d, was %d", tid, t->tid);
	if (__builtin_thread_pointer() != t->tp)
		return terr(t, "thread pointer %p, was %p", __builtin_thread_pointer(), t->tp);
	if ((void *)&tls_val != t->tls_addr || tls_val != TLS_THR(t->idx))
		return terr(t, "__thread value %#llx at %p, was %#llx at %p",
			    (unsigned long long)tls_val, (void *)&tls_val,
			    (unsigned long long)TLS_THR(t->idx), t->tls_addr);

	sigset_t cur;
	if (pthread_sigmask(SIG_SETMASK, NULL, &cur))
		return terr(t, "pthread_sigmask query failed");
	for (int sig = 1; sig <= SIGRTMAX; sig++) {
		if (sig >= 32 && sig < SIGRTMIN)
			continue;	/* glibc's own */
		if (sigismember(&cur, sig) != sigismember(&t->mask, sig))
			return terr(t, "signal %d is %sblocked, was %sblocked", sig,
				    sigismember(&cur, sig) ? "" : "not ",
				    sigismember(&t->mask, sig) ? "" : "not ");
	}
	char v[64];
	task_field(tid, "SigBlk:", v, sizeof(v));
	if (strtoull(v, NULL, 16) != mask_bits(&t->mask))
		return terr(t, "SigBlk is %s, expected %016llx", v, mask_bits(&t->mask));

	stack_t alt;
	if (sigaltstack(NULL, &alt))
		return terr(t, "sigaltstack: %s", strerror(errno));
	if (alt.ss_sp != t->alt.ss_sp || alt.ss_size != t->alt.ss_size ||
	    alt.ss_flags != t->alt.ss_flags)
		return terr(t, "sigaltstack reports sp %p size %zu flags %#x, was %p %zu %#x",
			    alt.ss_sp, alt.ss_size, (unsigned)alt.ss_flags, t->alt.ss_sp,
			    t->alt.ss_size, (unsigned)t->alt.ss_flags);

	if (t->cpu >= 0) {
		cpu_set_t got, want;
		CPU_ZERO(&want);
		CPU_SET(t->cpu, &want);
		if (sched_getaffinity(0, sizeof(got), &got))
			return terr(t, "sched_getaffinity: %s", strerror(errno));
		if (!CPU_EQUAL(&got, &want))
			return terr(t, "affinity: %d CPU(s) allowed, was only CPU %d",
				    CPU_COUNT(&got), t->cpu);
	}

	char comm[64];
	task_comm(tid, comm, sizeof(comm));
	if (strcmp(comm, t->name))
		return terr(t, "comm is \"%s\", was \"%s\"", comm, t->name);

	double d = third();
	if (fegetround() != t->round || memcmp(&d, &t->third, sizeof(d)))
		return terr(t, "rounding mode %#x (1/3 = %a), was %#x (1/3 = %a)", fegetround(),
			    d, t->round, t->third);
	if (mxcsr() != t->mxcsr)
		return terr(t, "MXCSR %#x, was %#x", mxcsr(), t->mxcsr);

	size_t len = 0;
	void *head = robust_head(&len);
	if (head != t->robust_head || len != t->robust_len)
		return terr(t, "robust list head %p (len %zu), was %p (len %zu)", head, len,
			    t->robust_head, t->robust_len);
	void *ta = tid_address();
	if (ta != t->tid_addr)
		return terr(t, "clear_child_tid address %p, was %p", ta, t->tid_addr);

	if (t->rseq_len) {
		int l = rseq_registered_len();
		if (l != t->rseq_len)
			return terr(t, "rseq re-registration (%p, %d): %s, expected EBUSY",
				    (void *)rseq_area(), t->rseq_len,
				    l == 0 ? "success (was unregistered)" : l < 0 ? strerror(-l) :
				    "EBUSY only with another length");
		sched_yield();
		int match = 0;
		for (int i = 0; i < 100 && !match; i++)
			match = (int32_t)rseq_area()->cpu_id >= 0 &&
				rseq_area()->cpu_id == sys_getcpu();
		if (!match)
			return terr(t, "rseq cpu_id %d never matched getcpu() %u",
				    (int32_t)rseq_area()->cpu_id, sys_getcpu());
		if (t->cpu >= 0 && rseq_area()->cpu_id != (uint32_t)t->cpu)
			return terr(t, "rseq cpu_id %u on a thread bound to CPU %d",
				    rseq_area()->cpu_id, t->cpu);
	}
	return 0;
}

static void *check_thunk(void *arg)
{
	check_self(arg);
	return NULL;
}

/* The damage a broken restore would do to thread t's own state. */
static void damage(struct thr *t)
{
	int i = t->idx;
	if ((CORRUPT(1) && i == 1) || (CORRUPT(6) && i == 0 && t->cpu < 0) ||
	    (CORRUPT(7) && i == 2 && !t->rseq_len))
		tls_val ^= 0x100;
	if (CORRUPT(2) && i == 1) {
		sigset_t s;
		sigemptyset(&s);
		sigaddset(&s, SIGRTMIN + 1);
		pthread_sigmask(SIG_UNBLOCK, &s, NULL);
	}
	if (CORRUPT(3) && i == 2) {
		stack_t s = t->alt;
		s.ss_flags = 0;
		sigaltstack(&s, NULL);
	}
	if (CORRUPT(4) && i == 0) {
		stack_t s = t->alt;
		s.ss_size -= ALT_STEP;
		sigaltstack(&s, NULL);
	}
	if (CORRUPT(5) && i == 1)
		pthread_setname_np(pthread_self(), "zdtm-other");
	if (CORRUPT(6) && i == 0 && t->cpu >= 0) {
		cpu_set_t all;
		CPU_ZERO(&all);
		for (int c = 0; c < CPU_SETSIZE; c++)
			CPU_SET(c, &all);
		sched_setaffinity(0, sizeof(all), &all);
	}
	if (CORRUPT(7) && i == 2 && t->rseq_len)
		syscall(SYS_rseq, rseq_area(), t->rseq_len, RSEQ_FLAG_UNREGISTER, RSEQ_SIG);
	if (CORRUPT(8) && i == 1)
		fesetround(FE_TONEAREST);
	if (CORRUPT(9) && i == 0) {
#ifdef __x86_64__
		__builtin_ia32_ldmxcsr(__builtin_ia32_stmxcsr() ^ 0x8000);
#else
		fesetround(FE_TONEAREST);
#endif
	}
	if (CORRUPT(12) && i == 0)
		syscall(SYS_set_robust_list, &empty_robust, sizeof(empty_robust));
	if (CORRUPT(13) && i == 2)
		syscall(SYS_set_tid_address, &dummy_tid_word);
}

static void *thread_main(void *arg)
{
	struct thr *t = arg;
	setup(t);
	pthread_mutex_lock(&mu);
	t->ready = 1;
	pthread_cond_broadcast(&cv);
	while (phase < 1)
		pthread_cond_wait(&cv, &mu);	/* checkpointed here */
	pthread_mutex_unlock(&mu);

	damage(t);
	if (CORRUPT(10) && t->idx == 1) {
		pthread_t other;
		if (pthread_create(&other, NULL, check_thunk, t) == 0)
			pthread_join(other, NULL);
	} else {
		check_self(t);
	}

	pthread_mutex_lock(&mu);
	t->done = 1;
	pthread_cond_broadcast(&cv);
	while (phase < 2)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);

	if (CORRUPT(14) && t->idx == 0)
		pthread_mutex_unlock(&robust);
	if (CORRUPT(15) && t->idx == 0)
		syscall(SYS_set_robust_list, &empty_robust, sizeof(empty_robust));
	if (CORRUPT(16) && t->idx == 1)
		syscall(SYS_set_tid_address, &dummy_tid_word);
	return t;		/* thread 0 still holds the robust mutex */
}

static void *idle_thread(void *arg)
{
	for (;;)
		pause();
	return NULL;
}

static int all_ready(void)
{
	for (int i = 0; i < NTHR; i++)
		if (!thr[i].ready)
			return 0;
	return 1;
}

static int all_done(void)
{
	for (int i = 0; i < NTHR; i++)
		if (!thr[i].done)
			return 0;
	return 1;
}

static struct timespec deadline(void)
{
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += WAIT_S;
	return dl;
}

/* Waits, with mu held, until cond() holds or WAIT_S seconds pass. */
static int wait_until(int (*cond)(void))
{
	struct timespec dl = deadline();
	while (!cond())
		if (pthread_cond_timedwait(&cv, &mu, &dl) == ETIMEDOUT)
			return cond();
	return 1;
}

static void first_error(const char *when)
{
	for (int i = 0; i < NTHR; i++)
		if (thr[i].err[0])
			fail("thread %d (tid %d) %s: %s", i, thr[i].tid, when, thr[i].err);
}

static int cmp_pid(const void *a, const void *b)
{
	return *(const pid_t *)a - *(const pid_t *)b;
}

/* Fills tids with /proc/self/task, sorted; returns their number. */
static int list_tasks(pid_t *tids, int max)
{
	DIR *d = opendir("/proc/self/task");
	if (!d)
		fail("opendir /proc/self/task: %m");
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && n < max)
			tids[n++] = atoi(e->d_name);
	closedir(d);
	qsort(tids, n, sizeof(pid_t), cmp_pid);
	return n;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	tls_val = TLS_MAIN;

	cpu_set_t allowed;
	if (sched_getaffinity(0, sizeof(allowed), &allowed))
		fail("sched_getaffinity: %m");
	int cpus[2], ncpu = 0;
	for (int c = 0; c < CPU_SETSIZE && ncpu < 2; c++)
		if (CPU_ISSET(c, &allowed))
			cpus[ncpu++] = c;

	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	if (pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST))
		fail("pthread_mutexattr_setrobust failed");
	pthread_mutex_init(&robust, &ma);

	/* The threads start with every signal blocked and set their own masks. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (int i = 0; i < NTHR; i++) {
		thr[i].idx = i;
		thr[i].cpu = ncpu >= 2 ? cpus[i == 1 ? 0 : 1] : -1;
		if (pthread_create(&thr[i].th, NULL, thread_main, &thr[i]))
			fail("pthread_create failed");
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	pthread_mutex_lock(&mu);
	if (!wait_until(all_ready))
		fail("the threads were not set up within %d s", WAIT_S);
	pthread_mutex_unlock(&mu);
	first_error("setting up");
	pid_t want[NTHR + 1];
	want[0] = getpid();
	for (int i = 0; i < NTHR; i++)
		want[i + 1] = thr[i].tid;
	qsort(want, NTHR + 1, sizeof(pid_t), cmp_pid);
	for (int i = 0; i < NTHR; i++)
		test_msg("thread %d: tid %d, CPU %d, altstack %p+%zu, rseq length %d", i,
			 thr[i].tid, thr[i].cpu, thr[i].alt.ss_sp, thr[i].alt.ss_size,
			 thr[i].rseq_len);

	test_ready();
	test_waitsig();

	if (CORRUPT(11)) {
		pthread_t extra;
		pthread_create(&extra, NULL, idle_thread, NULL);
	}

	pthread_mutex_lock(&mu);
	phase = 1;
	pthread_cond_broadcast(&cv);
	if (!wait_until(all_done)) {
		for (int i = 0; i < NTHR; i++)
			if (!thr[i].done)
				fail("thread %d (tid %d) did not report within %d s", i, thr[i].tid,
				     WAIT_S);
	}
	pthread_mutex_unlock(&mu);
	first_error("after restore");

	if (gettid() != getpid())
		fail("the main thread's tid %d is not the pid %d", gettid(), getpid());
	if (tls_val != TLS_MAIN)
		fail("the main thread's __thread value is %#llx", (unsigned long long)tls_val);
	pid_t got[16];
	int n = list_tasks(got, 16);
	if (n != NTHR + 1 || memcmp(got, want, sizeof(want)))
		fail("/proc/self/task lists %d tasks (%d %d %d %d%s), expected %d %d %d %d", n,
		     got[0], n > 1 ? got[1] : 0, n > 2 ? got[2] : 0, n > 3 ? got[3] : 0,
		     n > 4 ? " ..." : "", want[0], want[1], want[2], want[3]);

	pthread_mutex_lock(&mu);
	phase = 2;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);

	/* Thread 0 exits holding the robust mutex. */
	struct timespec dl = deadline();
	int r = pthread_mutex_timedlock(&robust, &dl);
	if (r != EOWNERDEAD)
		fail("locking the robust mutex of the exited thread 0: %s, expected EOWNERDEAD",
		     r ? strerror(r) : "success");
	pthread_mutex_consistent(&robust);
	pthread_mutex_unlock(&robust);

	for (int i = 0; i < NTHR; i++) {
		void *ret = NULL;
		dl = deadline();
		r = pthread_timedjoin_np(thr[i].th, &ret, &dl);
		if (r)
			fail("pthread_join of thread %d (tid %d): %s", i, thr[i].tid, strerror(r));
		if (ret != &thr[i])
			fail("thread %d returned %p, expected %p", i, ret, (void *)&thr[i]);
	}
	n = list_tasks(got, 16);
	if (n != 1 || got[0] != getpid())
		fail("%d tasks left after joining the threads", n);
	pass();
}
