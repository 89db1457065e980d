/*
 * Per-process knobs it set and can read back: oom_score_adj 345,
 * coredump_filter 0x71, transparent huge pages off (PR_SET_THP_DISABLE),
 * timer slack 1234567 ns, early machine-check kill, and RDTSC made to
 * fault (PR_SET_TSC). After the restore each reads back the same.
 */
#include <sys/prctl.h>

#include "lib.h"

static long read_knob(const char *name, int base)
{
	char path[64], buf[64] = "";
	snprintf(path, sizeof path, "/proc/self/%s", name);
	FILE *f = fopen(path, "r");
	if (!f || !fgets(buf, sizeof buf, f))
		fail("read %s: %m", path);
	fclose(f);
	return strtol(buf, NULL, base);
}

static void write_knob(const char *name, const char *value)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/self/%s", name);
	FILE *f = fopen(path, "w");
	if (!f || fputs(value, f) < 0 || fclose(f) != 0)
		fail("write %s: %m", path);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	write_knob("oom_score_adj", "345");
	write_knob("coredump_filter", "0x71");
	if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0)
		fail("PR_SET_THP_DISABLE: %m");
	if (prctl(PR_SET_TIMERSLACK, 1234567, 0, 0, 0) != 0)
		fail("PR_SET_TIMERSLACK: %m");
	if (prctl(PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_EARLY, 0, 0) != 0)
		fail("PR_MCE_KILL: %m");
	if (prctl(PR_SET_TSC, PR_TSC_SIGSEGV, 0, 0, 0) != 0)
		fail("PR_SET_TSC: %m");

	test_ready();
	test_waitsig();

	if (CORRUPT(1))
		write_knob("oom_score_adj", "346");
	if (CORRUPT(2))
		prctl(PR_SET_THP_DISABLE, 0, 0, 0, 0);
	if (CORRUPT(3))
		prctl(PR_SET_TIMERSLACK, 0, 0, 0, 0);
	if (CORRUPT(4))
		prctl(PR_SET_TSC, PR_TSC_ENABLE, 0, 0, 0);
	if (CORRUPT(5))
		write_knob("coredump_filter", "0x33");
	if (CORRUPT(6))
		prctl(PR_MCE_KILL, PR_MCE_KILL_CLEAR, 0, 0, 0);

	if (read_knob("oom_score_adj", 10) != 345)
		fail("oom_score_adj %ld, want 345", read_knob("oom_score_adj", 10));
	if (read_knob("coredump_filter", 16) != 0x71)
		fail("coredump_filter 0x%lx, want 0x71", read_knob("coredump_filter", 16));
	if (prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) != 1)
		fail("transparent huge pages are not off");
	if (prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0) != 1234567)
		fail("timer slack %d, want 1234567", prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0));
	if (prctl(PR_MCE_KILL_GET, 0, 0, 0, 0) != PR_MCE_KILL_EARLY)
		fail("machine-check kill policy %d, want early", prctl(PR_MCE_KILL_GET, 0, 0, 0, 0));
	int tsc = 0;
	if (prctl(PR_GET_TSC, &tsc, 0, 0, 0) != 0 || tsc != PR_TSC_SIGSEGV)
		fail("RDTSC no longer faults (PR_GET_TSC %d)", tsc);
	pass();
}
