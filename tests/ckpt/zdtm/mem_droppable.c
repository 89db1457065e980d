/*
 * MAP_DROPPABLE memory (Linux 6.11: private memory the kernel may free
 * under pressure, wiped in a child at fork, left out of core dumps; glibc's
 * getrandom keeps its state there) in a parent and its child. The parent
 * filled its region; the child's copy was wiped at fork and the child
 * filled it with its own bytes. After the restore each region is still
 * droppable (VmFlags "dp" in /proc/self/smaps) and every page reads as
 * its owner's bytes, or as zeros (a page the kernel dropped: allowed),
 * never anything else; a fork now still gets zeros.
 *
 * CORRUPT(k), after the SIGTERM: 1 a byte of the parent's region changes;
 * 2 the parent's region is mapped again as plain private memory, with the
 * same bytes; 3 the child's region loses a page's bytes to another value.
 */
#include <sys/mman.h>
#include <sys/wait.h>

#include "lib.h"

#ifndef MAP_DROPPABLE
#define MAP_DROPPABLE 0x08
#endif

#define PAGES 8
#define LEN (PAGES * 4096)

static unsigned char *region;

/* Whether the mapping at `p` has VmFlags "dp". */
static int droppable(const void *p)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	int in = 0, found = 0;
	unsigned long want = (unsigned long)p;
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') == line + strcspn(line, "-")) {
			in = lo <= want && want < hi;
			continue;
		}
		if (in && !strncmp(line, "VmFlags:", 8))
			found = strstr(line, " dp") != NULL;
	}
	if (f)
		fclose(f);
	return found;
}

/* Every page is all `v` or all zeros; returns the first bad page or -1. */
static int check(const unsigned char *p, unsigned char v)
{
	for (int pg = 0; pg < PAGES; pg++) {
		const unsigned char *q = p + pg * 4096;
		int all_v = 1, all_zero = 1;
		for (int i = 0; i < 4096; i++) {
			all_v &= q[i] == v;
			all_zero &= q[i] == 0;
		}
		if (!all_v && !all_zero)
			return pg;
	}
	return -1;
}

static int fork_sees_zeros(void)
{
	pid_t pid = fork();
	if (pid == 0)
		_exit(check(region, 0) < 0 && region[0] == 0 ? 0 : 1);
	int status;
	waitpid(pid, &status, 0);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void child(void)
{
	if (region[0] != 0 || region[LEN - 1] != 0)
		fail("child: the droppable region was not wiped at fork");
	memset(region, 0xc1, LEN);
	test_child_ready();
	test_waitsig();
	if (CORRUPT(3))
		memset(region + 4096, 0x77, 4096);
	if (!droppable(region))
		fail("child: its region is no longer droppable");
	int bad = check(region, 0xc1);
	if (bad >= 0)
		fail("child: page %d of its region holds other bytes", bad);
	pass();
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	region = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_DROPPABLE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED) {
		if (errno == EINVAL)
			skip("MAP_DROPPABLE is not supported by this kernel");
		fail("mmap: %m");
	}
	memset(region, 0xa7, LEN);
	if (!droppable(region))
		fail("a new MAP_DROPPABLE region shows no 'dp' in smaps");
	if (test_fork() == 0)
		child();
	test_wait_children_ready();

	test_ready();
	test_waitsig();

	if (CORRUPT(1))
		region[3 * 4096 + 10] ^= 1;
	if (CORRUPT(2)) {
		unsigned char *copy = malloc(LEN);
		memcpy(copy, region, LEN);
		mmap(region, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		memcpy(region, copy, LEN);
		free(copy);
	}
	if (!droppable(region))
		fail("the parent's region is no longer droppable");
	int bad = check(region, 0xa7);
	if (bad >= 0)
		fail("page %d of the parent's region holds other bytes", bad);
	if (!fork_sees_zeros())
		fail("a child forked now does not get the droppable region wiped");
	pass();
}
