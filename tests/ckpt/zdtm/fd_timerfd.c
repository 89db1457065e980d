/*
 * timerfd: a periodic CLOCK_MONOTONIC timer (100 ms), a one-shot
 * CLOCK_MONOTONIC timer 1000 s away and an absolute CLOCK_REALTIME timer
 * 500 s away (TFD_TIMER_ABSTIME). After the restore: the interval is still
 * exactly 100 ms and ticks keep coming (a blocking read returns within about
 * an interval); the one-shot's remaining time went down by about the time
 * that passed (a lag of up to 10 s, the time the process was away, is
 * reported but accepted); the absolute timer still expires at the same
 * wall-clock time.
 */
#include "lib.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/timerfd.h>
#include <time.h>

static double ts(const struct timespec *t) { return t->tv_sec + t->tv_nsec / 1e9; }

static double realtime(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return ts(&t);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	int periodic = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	int oneshot = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	int absolute = timerfd_create(CLOCK_REALTIME, 0);
	if (periodic < 0 || oneshot < 0 || absolute < 0)
		fail("timerfd_create: %m");
	struct itimerspec p = { { 0, 100000000 }, { 0, 100000000 } };
	struct itimerspec o = { { 0, 0 }, { 1000, 0 } };
	struct itimerspec a = { { 0, 0 }, { 0, 0 } };
	clock_gettime(CLOCK_REALTIME, &a.it_value);
	a.it_value.tv_sec += 500;
	double abs_target = ts(&a.it_value);
	if (timerfd_settime(periodic, 0, &p, NULL) || timerfd_settime(oneshot, 0, &o, NULL) ||
	    timerfd_settime(absolute, TFD_TIMER_ABSTIME, &a, NULL))
		fail("timerfd_settime: %m");
	double t0 = test_now();
	/* Consume a first tick. */
	struct pollfd pfd = { periodic, POLLIN, 0 };
	uint64_t ticks;
	if (poll(&pfd, 1, 2000) != 1 || read(periodic, &ticks, 8) != 8)
		fail("the periodic timer did not tick before the checkpoint");

	test_ready();
	test_waitsig();

	if (CORRUPT(1)) {
		struct itimerspec q = { { 0, 200000000 }, { 0, 100000000 } };
		timerfd_settime(periodic, 0, &q, NULL);
	}
	if (CORRUPT(2)) {
		struct itimerspec q = { { 0, 0 }, { 980, 0 } };	/* would fire early */
		timerfd_settime(oneshot, 0, &q, NULL);
	}
	if (CORRUPT(3)) {
		struct itimerspec q = { { 0, 0 }, { 500, 0 } };
		timerfd_settime(absolute, 0, &q, NULL);
	}

	double elapsed = test_now() - t0;
	struct itimerspec cur;
	if (timerfd_gettime(periodic, &cur))
		fail("timerfd_gettime: %m");
	if (cur.it_interval.tv_sec != 0 || cur.it_interval.tv_nsec != 100000000)
		fail("periodic interval is %ld.%09ld", (long)cur.it_interval.tv_sec,
		     cur.it_interval.tv_nsec);
	if (ts(&cur.it_value) <= 0 || ts(&cur.it_value) > 0.1)
		fail("periodic timer's next expiry in %.6f s", ts(&cur.it_value));
	/* Ticks keep coming: expirations accumulated so far, then a new one. */
	uint64_t acc = 0;
	read(periodic, &acc, 8);
	double w = test_now();
	if (poll(&pfd, 1, 1000) != 1 || read(periodic, &ticks, 8) != 8 || ticks < 1)
		fail("no tick from the periodic timer within 1 s after restore");
	w = test_now() - w;
	if (w > 0.25)
		fail("the next tick took %.3f s, the interval is 0.1 s", w);
	test_msg("%llu ticks accumulated over %.3f s since the first one",
		 (unsigned long long)acc, elapsed);
	if (acc > elapsed / 0.1 + 2)
		fail("%llu ticks in %.3f s is too many", (unsigned long long)acc, elapsed);

	elapsed = test_now() - t0;
	if (timerfd_gettime(oneshot, &cur))
		fail("timerfd_gettime: %m");
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
	if (timerfd_gettime(absolute, &cur))
		fail("timerfd_gettime: %m");
	double due = realtime() + ts(&cur.it_value);
	if (due < abs_target - 0.5 || due > abs_target + 0.5)
		fail("the absolute timer now expires at %.3f, set for %.3f", due, abs_target);
	pass();
}
