/*
 * Interval timers: ITIMER_REAL (50 ms period), ITIMER_VIRTUAL (300 ms
 * first, then 20 ms) and ITIMER_PROF (250 ms first, then 30 ms). After the
 * restore getitimer() shows the same intervals, ITIMER_REAL's value within
 * its period, and the CPU-time timers' values about where they were (the
 * process used almost no CPU while waiting; one tick more is accepted, as
 * setitimer() adds one to CPU-time timers); SIGALRM keeps coming while the
 * program sleeps and SIGVTALRM/SIGPROF come once it burns CPU.
 */
#include "lib.h"

#include <sys/time.h>
#include <time.h>

static volatile int n_alrm, n_vt, n_prof;

static void on_sig(int sig)
{
	if (sig == SIGALRM)
		n_alrm++;
	else if (sig == SIGVTALRM)
		n_vt++;
	else
		n_prof++;
}

static double tv(const struct timeval *t) { return t->tv_sec + t->tv_usec / 1e6; }

static const struct { int which; const char *name; struct itimerval set; } timers[] = {
	{ ITIMER_REAL, "ITIMER_REAL", { { 0, 50000 }, { 0, 50000 } } },
	{ ITIMER_VIRTUAL, "ITIMER_VIRTUAL", { { 0, 20000 }, { 0, 300000 } } },
	{ ITIMER_PROF, "ITIMER_PROF", { { 0, 30000 }, { 0, 250000 } } },
};

static double cpu_time(void)
{
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	struct sigaction sa = { .sa_handler = on_sig, .sa_flags = SA_RESTART };
	sigaction(SIGALRM, &sa, NULL);
	sigaction(SIGVTALRM, &sa, NULL);
	sigaction(SIGPROF, &sa, NULL);
	for (int i = 0; i < 3; i++)
		if (setitimer(timers[i].which, &timers[i].set, NULL))
			fail("setitimer(%s): %m", timers[i].name);
	struct itimerval before[3];
	for (int i = 0; i < 3; i++)
		getitimer(timers[i].which, &before[i]);
	double cpu_before = cpu_time();

	test_ready();
	test_waitsig();

	if (CORRUPT(1)) {
		struct itimerval v = { { 0, 40000 }, { 0, 40000 } };
		setitimer(ITIMER_REAL, &v, NULL);
	}
	if (CORRUPT(2)) {
		struct itimerval v = { { 0, 20000 }, { 0, 900000 } };
		setitimer(ITIMER_VIRTUAL, &v, NULL);
	}
	if (CORRUPT(3)) {
		struct itimerval v = { { 0, 0 }, { 0, 0 } };
		setitimer(ITIMER_PROF, &v, NULL);
	}

	double used = cpu_time() - cpu_before;
	for (int i = 0; i < 3; i++) {
		struct itimerval now;
		getitimer(timers[i].which, &now);
		if (tv(&now.it_interval) != tv(&timers[i].set.it_interval))
			fail("%s interval is %.6f s, expected %.6f s", timers[i].name,
			     tv(&now.it_interval), tv(&timers[i].set.it_interval));
		double v = tv(&now.it_value), b = tv(&before[i].it_value);
		if (timers[i].which == ITIMER_REAL) {
			if (v <= 0 || v > tv(&now.it_interval))
				fail("ITIMER_REAL value %.6f s is outside its period", v);
		} else {
			/* Re-arming a CPU-time timer costs a tick: setitimer() adds
			 * TICK_NSEC (up to 10 ms) to its value. The process's CPU
			 * clock may restart at the restore, so `used` is a hint.
			 * The timers are charged by whole ticks to whoever runs
			 * when a tick fires, not by the precise clock `used` reads:
			 * on a loaded machine a process that wakes 20 times a second
			 * was seen charged 52 ms for 1 ms of CPU without any
			 * checkpoint, so 150 ms are allowed. A value restored from
			 * the interval (30 ms or less) is still far below that. */
			if (v > b + 0.0101 || v < b - (used > 0 ? used : 0) - 0.15 || v <= 0)
				fail("%s value is %.6f s, was %.6f s, and %.3f s of CPU time were used",
				     timers[i].name, v, b, used);
			if (v > b)
				test_msg("%s value grew by %.6f s", timers[i].name, v - b);
		}
	}
	int a0 = n_alrm;
	double end = test_now() + 0.3;
	while (test_now() < end)
		usleep(10000);
	if (n_alrm - a0 < 3)
		fail("%d SIGALRMs in 0.3 s with a 50 ms ITIMER_REAL", n_alrm - a0);
	int vt0 = n_vt, prof0 = n_prof;
	volatile double x = 1;
	double cpu0 = cpu_time();
	while (cpu_time() - cpu0 < 0.6 && (n_vt == vt0 || n_prof == prof0))
		for (int i = 0; i < 100000; i++)
			x = x * 1.0000001;
	if (n_vt == vt0 || n_prof == prof0)
		fail("after 0.6 s of CPU: %d SIGVTALRM, %d SIGPROF", n_vt - vt0, n_prof - prof0);
	test_msg("signals: %d SIGALRM, %d SIGVTALRM, %d SIGPROF", n_alrm, n_vt, n_prof);
	pass();
}
