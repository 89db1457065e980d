/*
 * Private anonymous memory shared copy-on-write after fork stays shared:
 * root R fills 8 MiB (2048 pages) and forks C1 and C2; C1 rewrites pages
 * 100-199, drops 500-509 (MADV_DONTNEED) and forks G, which rewrites pages
 * 300-309; R then rewrites pages 1000-1009 (so the children keep the old
 * ones). After the restore every process finds its own contents, and each
 * child's pages are the very pages of its parent (the same frame in
 * /proc/PID/pagemap) wherever neither wrote since the fork: C1 and C2 with
 * R but for 100-199 (C1's), 500-509 (C1 has none) and 1000-1009 (R's);
 * G with C1 but for 300-309. Pages one of them rewrote are its own.
 * (Frames are visible to root only: the test needs root.)
 *
 * CORRUPT(k), after the SIGTERM: 1 C2 writes a byte of page 50 back as it
 * was (the contents stay, the sharing is lost); 2 G changes a byte of page
 * 700; 3 R drops page 1500; 4 C1 writes page 120 back as it was (a page
 * that was its own stays its own: no check can see it) and page 20 too
 * (shared: this one is seen).
 */
#include "lib.h"

#include <fcntl.h>
#include <sys/mman.h>

#define PAGES 2048
#define PAGE 4096UL

static unsigned char *mem;

/* Which seed page i holds in process `who` (0: none, absent). */
static uint64_t seed_of(char who, long i)
{
	if (who != 'R' && i >= 1000 && i < 1010)
		return 1;	/* the children keep the pages from before R's rewrite */
	if (who == 'R' && i >= 1000 && i < 1010)
		return 4;
	if ((who == '1' || who == 'G') && i >= 500 && i < 510)
		return 0;
	if (who == 'G' && i >= 300 && i < 310)
		return 3;
	if ((who == '1' || who == 'G') && i >= 100 && i < 200)
		return 2;
	return 1;
}

/* Whether page i of `who` is its parent's (still shared since its fork);
 * -1: either. */
static int shared_with_parent(char who, long i)
{
	if (who == '1')
		return !(i >= 100 && i < 200) && !(i >= 500 && i < 510) && !(i >= 1000 && i < 1010);
	if (who == '2')
		return !(i >= 1000 && i < 1010);
	if (who == 'G')	/* 500-509: the zero page in both once read */
		return (i >= 500 && i < 510) ? -1 : !(i >= 300 && i < 310);
	return 0;
}

static void fill_page(long i, uint64_t seed) { test_fill(mem + i * PAGE, PAGE, seed * 100000 + i); }

static void read_map(pid_t pid, uint64_t *out)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		fail("open %s: %m", path);
	ssize_t want = PAGES * 8;
	if (pread(fd, out, want, (off_t)((uintptr_t)mem / PAGE * 8)) != want)
		fail("read %s: %m", path);
	close(fd);
}

static void check(char who)
{
	const char *name = who == 'R' ? "R" : who == '1' ? "C1" : who == '2' ? "C2" : "G";
	for (long i = 0; i < PAGES; i++) {
		uint64_t seed = seed_of(who, i);
		if (seed == 0) {
			for (unsigned long b = 0; b < PAGE; b++)
				if (mem[i * PAGE + b])
					fail("%s: page %ld should be empty, byte %lu is %u", name, i, b, mem[i * PAGE + b]);
			continue;
		}
		long off = test_check_fill(mem + i * PAGE, PAGE, seed * 100000 + i);
		if (off >= 0)
			fail("%s: page %ld differs at byte %ld", name, i, off);
	}
	if (who == 'R')
		return;
	static uint64_t mine[PAGES], theirs[PAGES];
	read_map(getpid(), mine);
	read_map(getppid(), theirs);
	const uint64_t present = 1ULL << 63, frame = (1ULL << 55) - 1;
	long shared = 0;
	for (long i = 0; i < PAGES; i++) {
		if (!(mine[i] & present) || !(theirs[i] & present))
			continue;
		if ((mine[i] & frame) == 0)
			fail("%s: pagemap shows no frames (the test needs root)", name);
		int same = (mine[i] & frame) == (theirs[i] & frame), want = shared_with_parent(who, i);
		if (want >= 0 && same != want)
			fail("%s: page %ld is %s its parent's, want %s", name, i, same ? "still" : "no longer",
			     same ? "its own" : "shared");
		shared += same;
	}
	test_msg("%s: %ld pages shared with its parent", name, shared);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	mem = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		fail("mmap: %m");
	madvise(mem, PAGES * PAGE, MADV_NOHUGEPAGE);  /* pages, not one huge page per 2 MiB */
	for (long i = 0; i < PAGES; i++)
		fill_page(i, 1);

	if (test_fork() == 0) {			/* C1 */
		for (long i = 100; i < 200; i++)
			fill_page(i, 2);
		madvise(mem + 500 * PAGE, 10 * PAGE, MADV_DONTNEED);
		if (test_fork() == 0) {		/* G */
			for (long i = 300; i < 310; i++)
				fill_page(i, 3);
			test_child_ready();
			test_waitsig();
			if (CORRUPT(2))
				mem[700 * PAGE + 5] ^= 1;
			check('G');
			pass();
		}
		test_wait_children_ready();
		test_child_ready();
		test_waitsig();
		if (CORRUPT(4)) {
			((volatile unsigned char *)mem)[120 * PAGE] = mem[120 * PAGE];
			((volatile unsigned char *)mem)[20 * PAGE] = mem[20 * PAGE];
		}
		check('1');
		pass();
	}
	if (test_fork() == 0) {			/* C2 */
		test_child_ready();
		test_waitsig();
		if (CORRUPT(1))
			((volatile unsigned char *)mem)[50 * PAGE] = mem[50 * PAGE];
		check('2');
		pass();
	}
	test_wait_children_ready();
	for (long i = 1000; i < 1010; i++)
		fill_page(i, 4);
	test_ready();
	test_waitsig();
	if (CORRUPT(3))
		madvise(mem + 1500 * PAGE, PAGE, MADV_DONTNEED);
	check('R');
	pass();
}
