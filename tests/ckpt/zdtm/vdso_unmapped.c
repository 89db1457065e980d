/*
 * A process that unmapped its vDSO (some sandboxes and runtimes do; a
 * program under valgrind never has one): the engine, which works through
 * the vDSO's syscall instruction, uses one in the program's own code
 * instead, and the restored process has no vDSO either. After the restore
 * the program checks that the mapping is still gone and nothing took its
 * place, and that system calls still work (it reads its maps, and its pid
 * and a pipe's round trip agree with what they were).
 *
 * CORRUPT(1), after the SIGTERM: maps something where the vDSO was.
 */
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib.h"

static int vdso_mapped(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int found = 0;
	if (!f)
		fail("open maps: %m");
	while (fgets(line, sizeof line, f))
		found |= strstr(line, "[vdso]") != NULL;
	fclose(f);
	return found;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	unsigned long base = getauxval(AT_SYSINFO_EHDR);
	if (base == 0)
		skip("no vDSO to unmap");
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	unsigned long lo = 0, hi = 0;
	while (f && fgets(line, sizeof line, f)) {
		if (strstr(line, "[vdso]"))
			sscanf(line, "%lx-%lx", &lo, &hi);
	}
	if (f)
		fclose(f);
	if (lo != base || syscall(SYS_munmap, lo, hi - lo) != 0)
		fail("munmap the vDSO at 0x%lx: %m", base);

	pid_t pid = getpid();
	test_ready();
	test_waitsig();

	if (CORRUPT(1))
		mmap((void *)lo, hi - lo, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (vdso_mapped())
		fail("a vDSO is mapped again");
	FILE *m = fopen("/proc/self/maps", "r");
	while (m && fgets(line, sizeof line, m)) {
		if (strtoul(line, NULL, 16) == lo)
			fail("something is mapped where the vDSO was: %s", line);
	}
	if (m)
		fclose(m);
	int p[2];
	char c = 0;
	if (syscall(SYS_getpid) != pid)
		fail("getpid() is %ld, was %d", (long)syscall(SYS_getpid), pid);
	if (pipe(p) || write(p[1], "v", 1) != 1 || read(p[0], &c, 1) != 1 || c != 'v')
		fail("a pipe's round trip: %m");
	pass();
}
