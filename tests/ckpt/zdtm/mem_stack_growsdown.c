/*
 * Stacks: the program checkpoints 2000 frames deep in a recursion whose
 * frames each hold 1 KiB of content; after the restore every frame is
 * verified while unwinding (return addresses included, or it would crash).
 * A separate MAP_GROWSDOWN region keeps its content and still grows down when
 * the page below it is touched.
 */
#include "lib.h"

#include <setjmp.h>
#include <sys/mman.h>

#define DEPTH 2000
#define FRAME_BYTES 1024

static unsigned char *gd;	/* MAP_GROWSDOWN region */
static size_t gd_len, page;
static sigjmp_buf jb;
static volatile int faulted;

static void segv(int sig)
{
	faulted = 1;
	siglongjmp(jb, 1);
}

static void check_growsdown(void)
{
	if (CORRUPT(2))
		gd[gd_len - 1] ^= 1;
	long off = test_check_fill(gd, gd_len, 0x6d);
	if (off >= 0)
		fail("MAP_GROWSDOWN region differs at offset %ld", off);

	struct sigaction sa = { .sa_handler = segv };
	sigaction(SIGSEGV, &sa, NULL);
	if (CORRUPT(3))
		munmap(gd, gd_len);	/* a plain mapping in its place below */
	if (CORRUPT(3) && mmap(gd, gd_len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
		fail("mmap: %m");
	if (sigsetjmp(jb, 1) == 0) {
		volatile unsigned char *below = gd - page;
		*below = 0x42;
		if (*below != 0x42)
			fail("the page grown below the region does not hold a write");
	}
	signal(SIGSEGV, SIG_DFL);
	if (faulted)
		fail("touching the page below the MAP_GROWSDOWN region faulted: it does not grow down");
}

/* Each frame fills its buffer from its depth and recurses; at the bottom the
 * program waits for the checkpoint. */
static unsigned long recurse(int depth)
{
	volatile unsigned char frame[FRAME_BYTES];
	unsigned char tmp[FRAME_BYTES];
	unsigned long sum;

	test_fill(tmp, FRAME_BYTES, 0x57ac + depth);
	for (int i = 0; i < FRAME_BYTES; i++)
		frame[i] = tmp[i];
	if (depth == DEPTH) {
		test_ready();
		test_waitsig();
		if (CORRUPT(1))
			frame[3] ^= 1;
		sum = 0;
	} else {
		sum = recurse(depth + 1);
	}
	for (int i = 0; i < FRAME_BYTES; i++)
		tmp[i] = frame[i];
	if (test_check_fill(tmp, FRAME_BYTES, 0x57ac + depth) >= 0)
		fail("stack frame at depth %d (%p) differs", depth, (void *)frame);
	return sum + depth;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	page = sysconf(_SC_PAGESIZE);

	/* Reserve a big hole and put the GROWSDOWN region at its top, so that
	 * there is room below it to grow into (beyond the stack guard gap). */
	size_t hole = 64 << 20;
	gd_len = 4 * page;
	unsigned char *res = mmap(NULL, hole, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (res == MAP_FAILED)
		fail("mmap reserve: %m");
	munmap(res, hole);
	gd = mmap(res + hole - gd_len, gd_len, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN | MAP_FIXED, -1, 0);
	if (gd == MAP_FAILED)
		fail("mmap MAP_GROWSDOWN: %m");
	test_fill(gd, gd_len, 0x6d);

	unsigned long sum = recurse(1);
	if (sum != (unsigned long)DEPTH * (DEPTH + 1) / 2)
		fail("recursion returned %lu", sum);
	check_growsdown();
	pass();
}
