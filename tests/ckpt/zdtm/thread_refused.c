/*
 * Refusal of a multi-threaded process: with a second thread alive, `roam
 * checkpoint` must fail with one line naming the pid and threads, and leave
 * the process running untouched (the runner compares its state before and
 * after, then sends SIGTERM). The program checks that its second thread is
 * still alive and responsive: it must acknowledge a request made after the
 * SIGTERM, and its own counter of spins must be intact.
 */
#include "lib.h"

#include <pthread.h>
#include <time.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int request, ack;
static volatile pid_t worker_tid;

static void *worker(void *arg)
{
	worker_tid = gettid();
	pthread_mutex_lock(&mu);
	while (!request)
		pthread_cond_wait(&cv, &mu);
	ack = request * 2;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	return NULL;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	pthread_t t;
	if (pthread_create(&t, NULL, worker, NULL))
		fail("pthread_create failed");
	while (!worker_tid)
		usleep(1000);
	test_expect_refusal("\\b%d\\b", getpid());
	test_expect_refusal("thread");
	test_msg("second thread tid %d", worker_tid);

	test_ready();
	test_waitsig();

	if (CORRUPT(1)) {	/* the second thread dies */
		pthread_cancel(t);
		pthread_join(t, NULL);
	}
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/task/%d", worker_tid);
	if (access(path, F_OK))
		fail("the second thread %d is gone", worker_tid);
	pthread_mutex_lock(&mu);
	request = 21;
	pthread_cond_broadcast(&cv);
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 5;
	while (ack != 42)
		if (pthread_cond_timedwait(&cv, &mu, &dl))
			break;
	pthread_mutex_unlock(&mu);
	if (ack != 42)
		fail("the second thread did not answer within 5 s");
	pthread_join(t, NULL);
	pass();
}
