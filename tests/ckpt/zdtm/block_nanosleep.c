/*
 * Blocked in nanosleep(): the program sleeps in 3-second nanosleep() calls
 * until SIGTERM, so the checkpoint lands inside one. After the restore the
 * interrupted sleep must go on: a nanosleep() that returns 0 must have lasted
 * at least its request (CLOCK_MONOTONIC), and one that returns EINTR must
 * have had a signal (the SIGTERM) and report a sane remaining time. The total
 * time asleep is reported.
 */
#include "lib.h"

#include <time.h>

#define SLEEP_S 3

int main(int argc, char **argv)
{
	test_init(argc, argv);
	test_ready();

	double start = test_now(), slept = 0;
	int sleeps = 0;
	while (!test_terminated) {
		struct timespec req = { SLEEP_S, 0 }, rem = { -1, -1 };
		double t0 = test_now();
		int r = nanosleep(&req, &rem);
		double dt = test_now() - t0;
		if (CORRUPT(1) && test_terminated)
			r = -1, errno = EINTR, test_terminated = 0;
		if (CORRUPT(2) && test_terminated)
			dt = SLEEP_S - 0.5, rem.tv_sec = SLEEP_S + 7;
		sleeps++;
		slept += dt;
		if (r == 0) {
			if (dt < SLEEP_S - 0.001)
				fail("nanosleep(%d s) returned 0 after %.3f s", SLEEP_S, dt);
			continue;
		}
		if (errno != EINTR)
			fail("nanosleep: %m");
		if (!test_terminated)
			fail("nanosleep returned EINTR after %.3f s without a signal", dt);
		double left = rem.tv_sec + rem.tv_nsec / 1e9;
		if (rem.tv_sec < 0 || rem.tv_nsec < 0 || rem.tv_nsec >= 1000000000 || left > SLEEP_S)
			fail("nanosleep's remaining time is garbage: %ld.%09ld",
			     (long)rem.tv_sec, rem.tv_nsec);
		/* The remaining time and the time slept add up (loose: scheduling). */
		if (dt + left < SLEEP_S - 0.2)
			fail("slept %.3f s with %.3f s remaining of %d s", dt, left, SLEEP_S);
	}
	test_msg("slept %.3f s in %d nanosleep() calls over %.3f s", slept, sleeps,
		 test_now() - start);
	pass();
}
