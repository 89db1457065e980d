/*
 * Blocked in FUTEX_WAIT with a 60 s timeout. The SIGTERM handler sets the
 * futex word and calls FUTEX_WAKE; until then the wait must not end: a
 * return with the word still 0 (EINTR without a signal, ETIMEDOUT, or a
 * wake-up) after the restore is a failure.
 */
#include "lib.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>

static volatile uint32_t word;
static volatile int handled;

static long futex(volatile uint32_t *uaddr, int op, uint32_t val, const struct timespec *ts)
{
	return syscall(SYS_futex, uaddr, op, val, ts, NULL, 0);
}

static void on_term(int sig)
{
	handled = 1;
	word = 1;
	futex(&word, FUTEX_WAKE, 1, NULL);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	struct sigaction sa = { .sa_handler = on_term, .sa_flags = SA_RESTART };
	sigaction(SIGTERM, &sa, NULL);

	test_ready();
	int waits = 0;
	double t0 = test_now();
	while (word == 0) {
		struct timespec ts = { 60, 0 };
		long r = futex(&word, FUTEX_WAIT, 0, &ts);
		int e = errno;
		waits++;
		if (CORRUPT(1))
			handled = 0, r = -1, e = EINTR;
		if (r == 0 && word == 0)
			fail("FUTEX_WAIT returned 0 with the word still 0 after %.3f s",
			     test_now() - t0);
		if (r < 0 && e == ETIMEDOUT)
			fail("FUTEX_WAIT timed out after %.3f s", test_now() - t0);
		if (r < 0 && e == EINTR && !handled)
			fail("FUTEX_WAIT returned EINTR without a signal after %.3f s",
			     test_now() - t0);
		if (r < 0 && e != EINTR && e != EAGAIN)
			fail("FUTEX_WAIT: %s", strerror(e));
	}
	if (!handled)
		fail("the word changed without the SIGTERM handler");
	test_msg("woken after %.3f s, %d FUTEX_WAIT calls", test_now() - t0, waits);
	pass();
}
