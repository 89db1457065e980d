/*
 * POSIX timers: three timers created and the first deleted, so the live
 * ones have ids 1, 2 and 3 (id 0 is free): a periodic CLOCK_MONOTONIC timer
 * (100 ms, SIGEV_SIGNAL SIGRTMIN+1, sival 0xc0ffee), a one-shot 1000 s
 * CLOCK_MONOTONIC timer (SIGRTMIN+2) and an absolute CLOCK_REALTIME
 * SIGEV_NONE timer 500 s away. After the restore: /proc/self/timers is the
 * same (ids, signals, values, clocks), the same ids work with timer_gettime
 * and id 0 does not, the remaining times are consistent, and the periodic
 * timer keeps firing with si_value 0xc0ffee and si_timerid 1.
 */
#include "lib.h"

#include <time.h>

static volatile int fired, bad_value, bad_id;
static timer_t periodic_id;

static void on_timer(int sig, siginfo_t *si, void *uc)
{
	fired++;
	if (si->si_value.sival_int != 0xc0ffee)
		bad_value = si->si_value.sival_int;
	if (si->si_code != SI_TIMER || si->si_timerid != (int)(intptr_t)periodic_id)
		bad_id = si->si_timerid + 1000 * (si->si_code != SI_TIMER);
}

static double ts(const struct timespec *t) { return t->tv_sec + t->tv_nsec / 1e9; }

static void read_timers(char *out, size_t len)
{
	FILE *f = fopen("/proc/self/timers", "r");
	if (!f)
		fail("open /proc/self/timers: %m");
	size_t n = fread(out, 1, len - 1, f);
	out[n] = 0;
	fclose(f);
	/* Each timer is 4 lines; sort by whole blocks via sorting lines
	 * prefixed with their ID. */
	char tmp[4096] = "", id[32] = "";
	for (char *save, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(l, "ID:", 3))
			snprintf(id, sizeof(id), "%s", l);
		char pid_free[256];
		snprintf(pid_free, sizeof(pid_free), "%s", l);
		char *dot = strstr(pid_free, "/pid.");	/* notify: signal/pid.N: N is ours */
		if (dot)
			dot[5] = 0;
		strcat(tmp, id);
		strcat(tmp, " | ");
		strcat(tmp, pid_free);
		strcat(tmp, "\n");
	}
	test_sort_lines(tmp);
	snprintf(out, len, "%s", tmp);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	struct sigaction sa = { .sa_sigaction = on_timer, .sa_flags = SA_SIGINFO | SA_RESTART };
	sigaction(SIGRTMIN + 1, &sa, NULL);

	timer_t first, oneshot, absolute;
	struct sigevent sev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGRTMIN + 1 };
	if (timer_create(CLOCK_MONOTONIC, &sev, &first))
		fail("timer_create: %m");
	sev.sigev_value.sival_int = 0xc0ffee;
	if (timer_create(CLOCK_MONOTONIC, &sev, &periodic_id))
		fail("timer_create: %m");
	sev.sigev_signo = SIGRTMIN + 2;
	sev.sigev_value.sival_int = 0x0ffe;
	if (timer_create(CLOCK_MONOTONIC, &sev, &oneshot))
		fail("timer_create: %m");
	struct sigevent none = { .sigev_notify = SIGEV_NONE };
	if (timer_create(CLOCK_REALTIME, &none, &absolute))
		fail("timer_create: %m");
	timer_delete(first);
	test_msg("timer ids: periodic %ld, one-shot %ld, absolute %ld (deleted %ld)",
		 (long)(intptr_t)periodic_id, (long)(intptr_t)oneshot,
		 (long)(intptr_t)absolute, (long)(intptr_t)first);

	struct itimerspec p = { { 0, 100000000 }, { 0, 100000000 } };
	struct itimerspec o = { { 0, 0 }, { 1000, 0 } };
	struct itimerspec a = { { 0, 0 }, { 0, 0 } };
	clock_gettime(CLOCK_REALTIME, &a.it_value);
	a.it_value.tv_sec += 500;
	double abs_target = ts(&a.it_value);
	if (timer_settime(periodic_id, 0, &p, NULL) || timer_settime(oneshot, 0, &o, NULL) ||
	    timer_settime(absolute, TIMER_ABSTIME, &a, NULL))
		fail("timer_settime: %m");
	double t0 = test_now();
	char before[4096], after[4096];
	read_timers(before, sizeof(before));

	test_ready();
	test_waitsig();

	if (CORRUPT(1)) {
		timer_delete(oneshot);
		timer_create(CLOCK_MONOTONIC, &sev, &oneshot);
		timer_settime(oneshot, 0, &o, NULL);
	}
	if (CORRUPT(2)) {
		struct itimerspec q = { { 0, 200000000 }, { 0, 100000000 } };
		timer_settime(periodic_id, 0, &q, NULL);
	}
	if (CORRUPT(3)) {	/* would fire early */
		struct itimerspec q = { { 0, 0 }, { 980, 0 } };
		timer_settime(oneshot, 0, &q, NULL);
	}

	read_timers(after, sizeof(after));
	if (strcmp(before, after))
		fail("/proc/self/timers changed:\n%s-- was --\n%s", after, before);
	struct itimerspec cur;
	if (timer_gettime(first, &cur) == 0 || errno != EINVAL)
		fail("the deleted timer id %ld exists after restore", (long)(intptr_t)first);
	if (timer_gettime(periodic_id, &cur))
		fail("timer_gettime(periodic): %m");
	if (cur.it_interval.tv_sec || cur.it_interval.tv_nsec != 100000000)
		fail("periodic timer interval %.9f s", ts(&cur.it_interval));
	double elapsed = test_now() - t0;
	if (timer_gettime(oneshot, &cur))
		fail("timer_gettime(one-shot): %m");
	double left = ts(&cur.it_value);
	/* A relative timer may be re-armed with the time left at the checkpoint,
	 * so it can lag by the time the process was frozen or absent (reported,
	 * up to 10 s accepted); it must never run early. */
	double lag = left - (1000 - elapsed);
	if (lag < -0.5 || lag > 10)
		fail("one-shot timer: %.3f s left after %.3f s, expected about %.3f", left,
		     elapsed, 1000 - elapsed);
	if (lag > 0.01)
		test_msg("the one-shot timer lags by %.3f s", lag);
	if (timer_gettime(absolute, &cur))
		fail("timer_gettime(absolute): %m");
	struct timespec rt;
	clock_gettime(CLOCK_REALTIME, &rt);
	double due = ts(&rt) + ts(&cur.it_value);
	if (due < abs_target - 0.5 || due > abs_target + 0.5)
		fail("the absolute timer now expires at %.3f, set for %.3f", due, abs_target);

	int f0 = fired;
	double end = test_now() + 0.35;
	while (test_now() < end)
		usleep(10000);
	if (fired - f0 < 2)
		fail("the periodic timer fired %d times in 0.35 s", fired - f0);
	if (bad_value || bad_id)
		fail("timer signal with si_value %#x / si_timerid+code %d", bad_value, bad_id);

	timer_t fresh;
	if (timer_create(CLOCK_MONOTONIC, &none, &fresh) == 0)
		test_msg("a timer created after restore got id %ld", (long)(intptr_t)fresh);
	pass();
}
