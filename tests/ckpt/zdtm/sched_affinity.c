/*
 * Scheduling state set by the process on itself survives the restore: its
 * CPU affinity (narrowed to the highest CPU when there are several), a nice
 * of 7 and the SCHED_BATCH policy. The restorer's own mask must not leak
 * into it either (roamd pins its engine thread to one CPU while it works).
 */
#include "lib.h"

#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	test_init(argc, argv);
	cpu_set_t want;
	if (sched_getaffinity(0, sizeof(want), &want))
		fail("sched_getaffinity: %m");
	int last = -1;
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &want))
			last = c;
	if (CPU_COUNT(&want) > 1) {
		CPU_ZERO(&want);
		CPU_SET(last, &want);
	}
	if (sched_setaffinity(0, sizeof(want), &want))
		fail("sched_setaffinity: %m");
	if (setpriority(PRIO_PROCESS, 0, 7))
		fail("setpriority: %m");
	struct sched_param param = { 0 };
	if (sched_setscheduler(0, SCHED_BATCH, &param))
		fail("sched_setscheduler SCHED_BATCH: %m");
	test_msg("affinity %d CPU(s), highest %d; nice 7; SCHED_BATCH", CPU_COUNT(&want), last);

	test_ready();
	test_waitsig();

	if (CORRUPT(1)) {
		cpu_set_t all;
		CPU_ZERO(&all);
		for (int c = 0; c < CPU_SETSIZE; c++)
			CPU_SET(c, &all);
		sched_setaffinity(0, sizeof(all), &all);
		sched_getaffinity(0, sizeof(all), &all);
		if (CPU_COUNT(&all) == 1) { /* a 1-CPU machine: damage the nice instead */
			setpriority(PRIO_PROCESS, 0, 9);
		}
	}
	if (CORRUPT(2))
		setpriority(PRIO_PROCESS, 0, 8);
	if (CORRUPT(3))
		sched_setscheduler(0, SCHED_OTHER, &param);

	cpu_set_t got;
	if (sched_getaffinity(0, sizeof(got), &got))
		fail("sched_getaffinity after restore: %m");
	if (!CPU_EQUAL(&got, &want))
		fail("affinity: %d CPU(s) allowed after restore, %d before", CPU_COUNT(&got), CPU_COUNT(&want));
	errno = 0;
	int nice = getpriority(PRIO_PROCESS, 0);
	if (nice != 7)
		fail("nice %d after restore, 7 before", nice);
	int policy = sched_getscheduler(0);
	if (policy != SCHED_BATCH)
		fail("policy %d after restore, SCHED_BATCH (%d) before", policy, SCHED_BATCH);
	pass();
}
