/*
 * A multi-threaded process stopped with SIGSTOP (the runner stops it before
 * the checkpoint: test_stop_before_ckpt) comes back stopped, every thread
 * of it (the runner checks each /proc/PID/task/TID state), and goes on
 * after SIGCONT: three threads counting in a loop all count again, with
 * the same tids.
 *
 * CORRUPT(k), after the SIGTERM: 1 thread 1 stops counting; 2 thread 2's
 * recorded tid changes.
 */
#include "lib.h"

#include <pthread.h>

#define N 3

static volatile uint64_t count[N];
static volatile pid_t tids[N];
static volatile int quit[N];

static void *worker(void *arg)
{
	int i = (int)(intptr_t)arg;
	tids[i] = gettid();
	while (!quit[i]) {
		count[i]++;
		usleep(1000);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);  /* SIGTERM stays the main thread's */
	pthread_t t[N];
	for (int i = 0; i < N; i++)
		if (pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i))
			fail("pthread_create");
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	for (int i = 0; i < N; i++)
		while (!tids[i] || count[i] < 10)
			usleep(1000);
	pid_t before[N];
	for (int i = 0; i < N; i++)
		before[i] = tids[i];
	test_stop_before_ckpt();
	test_ready();
	test_waitsig();

	if (CORRUPT(1))
		quit[1] = 1;
	if (CORRUPT(2))
		tids[2] = before[2] + 1;
	usleep(20000);
	uint64_t now[N];
	for (int i = 0; i < N; i++)
		now[i] = count[i];
	double end = test_now() + 5;
	for (int i = 0; i < N; i++) {
		while (count[i] < now[i] + 20 && test_now() < end)
			usleep(1000);
		if (count[i] < now[i] + 20)
			fail("thread %d (tid %d) does not count after SIGCONT", i, tids[i]);
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/task/%d", before[i]);
		if (tids[i] != before[i] || access(path, F_OK))
			fail("thread %d: tid %d, want %d", i, tids[i], before[i]);
	}
	for (int i = 0; i < N; i++) {
		quit[i] = 1;
		pthread_join(t[i], NULL);
	}
	pass();
}
