/*
 * Clocks through the vDSO after the restore: [vdso], [vvar] and
 * [vvar_vclock] are where they were (getauxval(AT_SYSINFO_EHDR) and
 * /proc/self/maps agree, the vDSO still starts with an ELF header), and
 * clock_gettime (MONOTONIC, REALTIME, BOOTTIME, the COARSE clocks),
 * gettimeofday, time and getcpu work: monotonic clocks did not go back,
 * realtime moved forward by a sane amount, and the vDSO's answers agree with
 * the real system calls (a vDSO reading stale vvar data would not).
 */
#include "lib.h"

#include <sched.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>

struct special { const char *name; unsigned long start, end; };
static struct special specials[] = {
	{ "[vdso]", 0, 0 }, { "[vvar]", 0, 0 }, { "[vvar_vclock]", 0, 0 },
};
#define NR_SPECIAL 3

static void read_specials(struct special *out)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	if (!f)
		fail("open /proc/self/maps: %m");
	for (int i = 0; i < NR_SPECIAL; i++)
		out[i] = (struct special){ specials[i].name, 0, 0 };
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e;
		char name[256] = "";
		if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %255s", &s, &e, name) < 2)
			continue;
		for (int i = 0; i < NR_SPECIAL; i++)
			if (!strcmp(name, out[i].name))
				out[i].start = s, out[i].end = e;
	}
	fclose(f);
}

static double ts(const struct timespec *t) { return t->tv_sec + t->tv_nsec / 1e9; }

static double vdso_clock(clockid_t c)
{
	struct timespec t;
	if (clock_gettime(c, &t))
		fail("clock_gettime(%d): %m", c);
	return ts(&t);
}

static double sys_clock(clockid_t c)
{
	struct timespec t;
	if (syscall(SYS_clock_gettime, c, &t))
		fail("syscall clock_gettime(%d): %m", c);
	return ts(&t);
}

static const clockid_t clocks[] = { CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_BOOTTIME,
				    CLOCK_MONOTONIC_RAW, CLOCK_MONOTONIC_COARSE,
				    CLOCK_REALTIME_COARSE };
#define NR_CLOCKS (sizeof(clocks) / sizeof(clocks[0]))

int main(int argc, char **argv)
{
	test_init(argc, argv);
	unsigned long ehdr = getauxval(AT_SYSINFO_EHDR);
	struct special before[NR_SPECIAL], after[NR_SPECIAL];
	read_specials(before);
	if (!ehdr || before[0].start != ehdr)
		fail("AT_SYSINFO_EHDR %#lx, [vdso] at %#lx", ehdr, before[0].start);
	test_msg("[vdso] %#lx [vvar] %#lx [vvar_vclock] %#lx", before[0].start,
		 before[1].start, before[2].start);
	double t_before[NR_CLOCKS];
	for (unsigned i = 0; i < NR_CLOCKS; i++)
		t_before[i] = vdso_clock(clocks[i]);

	test_ready();
	test_waitsig();

	double t_after[NR_CLOCKS];
	for (unsigned i = 0; i < NR_CLOCKS; i++)
		t_after[i] = vdso_clock(clocks[i]);
	read_specials(after);
	if (CORRUPT(1))
		after[1].start += 4096;
	if (CORRUPT(2))
		t_after[0] = t_before[0] - 1;
	if (CORRUPT(3))
		t_after[1] += 3;

	for (int i = 0; i < NR_SPECIAL; i++)
		if (after[i].start != before[i].start || after[i].end != before[i].end)
			fail("%s moved from %#lx-%#lx to %#lx-%#lx", before[i].name, before[i].start,
			     before[i].end, after[i].start, after[i].end);
	if (getauxval(AT_SYSINFO_EHDR) != ehdr || memcmp((void *)ehdr, "\177ELF", 4))
		fail("no ELF header at the vDSO address %#lx", ehdr);

	for (unsigned i = 0; i < NR_CLOCKS; i++) {
		double dt = t_after[i] - t_before[i];
		if (dt < 0 || dt > 600)
			fail("clock %d moved by %.6f s across the checkpoint", clocks[i], dt);
		/* vDSO and system call agree (COARSE clocks tick every few ms). */
		double v = vdso_clock(clocks[i]), s = sys_clock(clocks[i]);
		double d = v > s ? v - s : s - v;
		if (CORRUPT(3) && clocks[i] == CLOCK_REALTIME)
			d = t_after[1] - s;
		if (d > 0.05)
			fail("clock %d: vDSO and system call differ by %.6f s (%.6f, %.6f)", clocks[i],
			     d, v, s);
	}
	struct timeval tv;
	if (gettimeofday(&tv, NULL))
		fail("gettimeofday: %m");
	double rt = sys_clock(CLOCK_REALTIME);
	double gtod = tv.tv_sec + tv.tv_usec / 1e6;
	if (gtod > rt + 0.001 || gtod < rt - 0.05)
		fail("gettimeofday %.6f, CLOCK_REALTIME %.6f", gtod, rt);
	time_t now = time(NULL);
	if (now < (time_t)rt - 1 || now > (time_t)rt + 1)
		fail("time() %ld, CLOCK_REALTIME %.0f", (long)now, rt);
	unsigned cpu, node;
	if (getcpu(&cpu, &node) || cpu >= (unsigned)sysconf(_SC_NPROCESSORS_CONF))
		fail("getcpu: cpu %u (%m)", cpu);
	pass();
}
