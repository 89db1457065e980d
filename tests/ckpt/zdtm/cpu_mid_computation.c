/*
 * A checkpoint in the middle of a long floating-point computation: a
 * chaotic iteration (logistic map in double and long double, plus a
 * vectorisable sum) under a non-default rounding mode, run once before READY
 * as a reference and then over and over until SIGTERM. The checkpoint lands
 * inside a run (the process is running, not sleeping); every run must give
 * bit for bit the reference result, and any lost register bit or reset
 * rounding mode changes it.
 */
#include "lib.h"

#include <fenv.h>
#include <math.h>

struct result {
	double x;
	long double lx;
	double sum[8];
};

static double vec[8];

static void compute(long iters, struct result *r)
{
	double x = 0.123456789;
	long double lx = 0.987654321L;
	double s[8];

	for (int j = 0; j < 8; j++)
		s[j] = vec[j];
	for (long i = 0; i < iters; i++) {
		x = 3.99 * x * (1.0 - x);
		lx = 3.97L * lx * (1.0L - lx);
		for (int j = 0; j < 8; j++)
			s[j] = s[j] * 0.999999 + x * (j + 1);
	}
	r->x = x;
	r->lx = lx;
	memcpy(r->sum, s, sizeof(s));
}

static int same(const struct result *a, const struct result *b)
{
	return memcmp(&a->x, &b->x, 8) == 0 && memcmp(&a->lx, &b->lx, 10) == 0 &&
	       memcmp(a->sum, b->sum, sizeof(a->sum)) == 0;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	for (int j = 0; j < 8; j++)
		vec[j] = sqrt(j + 2.0);
	if (fesetround(FE_UPWARD))
		fail("fesetround");

	/* Size a run to about 0.3 s. */
	long iters = 100000;
	struct result ref, r;
	for (;;) {
		double t = test_now();
		compute(iters, &ref);
		t = test_now() - t;
		if (t > 0.05) {
			iters = (long)(iters * 0.3 / t);
			break;
		}
		iters *= 4;
	}
	compute(iters, &ref);
	test_msg("%ld iterations per run", iters);

	test_ready();
	int runs = 0;
	for (int last = 0; !last;) {
		last = test_terminated;	/* one more full run after SIGTERM */
		if (CORRUPT(1) && last)
			fesetround(FE_TONEAREST);
		compute(iters, &r);
		runs++;
		if (!same(&r, &ref))
			fail("run %d gave a different result: x %.17g (expected %.17g), "
			     "lx %.21Lg (expected %.21Lg)", runs, r.x, ref.x, r.lx, ref.lx);
	}
	if (fegetround() != FE_UPWARD)
		fail("the rounding mode changed");
	fesetround(FE_TONEAREST);
	test_msg("%d runs matched the reference", runs);
	pass();
}
