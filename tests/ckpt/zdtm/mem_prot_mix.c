/*
 * Anonymous regions with every useful protection: r--, rw-, -w- (shown as
 * such in maps), r-x holding code, and one mapping split by mprotect into
 * r-- | rw- | r-x | rw- parts. After the restore: contents intact, writes to
 * r-- pages fault, writes to rw- pages work, the code in r-x pages runs and
 * returns its value, code in rw- memory does not run (NX), and mprotect
 * still changes protections.
 */
#include "lib.h"

#include <sys/mman.h>

static size_t page;

/* mov eax, imm32; ret; then int3 padding. */
static void put_code(unsigned char *p, uint32_t value)
{
	memset(p, 0xcc, page);
	p[0] = 0xb8;
	memcpy(p + 1, &value, 4);
	p[5] = 0xc3;
}

static void expect(unsigned char *addr, int mode, int want_sig, const char *what)
{
	int code, sig = test_probe(addr, mode, &code);
	if (sig != want_sig)
		fail("%c access to %s at %p: signal %d, expected %d", mode, what,
		     (void *)addr, sig, want_sig);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	page = sysconf(_SC_PAGESIZE);
	int anon = MAP_PRIVATE | MAP_ANONYMOUS;

	unsigned char *ro = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, anon, -1, 0);
	unsigned char *rw = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, anon, -1, 0);
	unsigned char *wo = mmap(NULL, page, PROT_WRITE, anon, -1, 0);
	unsigned char *rx = mmap(NULL, page, PROT_READ | PROT_WRITE, anon, -1, 0);
	unsigned char *mix = mmap(NULL, 8 * page, PROT_READ | PROT_WRITE, anon, -1, 0);
	if (ro == MAP_FAILED || rw == MAP_FAILED || wo == MAP_FAILED || rx == MAP_FAILED ||
	    mix == MAP_FAILED)
		fail("mmap: %m");
	test_fill(ro, 2 * page, 1);
	test_fill(rw, 2 * page, 2);
	test_fill(wo, page, 3);
	put_code(rx, 42);
	test_fill(mix, 8 * page, 5);
	put_code(mix + 4 * page, 77);
	mix[6 * page] = 0xc3;	/* a `ret` in rw- memory: must not execute */
	if (mprotect(ro, 2 * page, PROT_READ) || mprotect(rx, page, PROT_READ | PROT_EXEC) ||
	    mprotect(mix, 2 * page, PROT_READ) ||
	    mprotect(mix + 4 * page, page, PROT_READ | PROT_EXEC))
		fail("mprotect: %m");

	test_ready();
	test_waitsig();

	if (CORRUPT(1))
		mprotect(ro, page, PROT_READ | PROT_WRITE);
	if (CORRUPT(2))
		mprotect(mix + 6 * page, page, PROT_READ | PROT_WRITE | PROT_EXEC);
	if (CORRUPT(3))
		mprotect(rx, page, PROT_READ);
	if (CORRUPT(4))
		rw[page + 1] ^= 1;

	if (test_check_fill(ro, 2 * page, 1) >= 0)
		fail("r-- region content differs");
	if (test_check_fill(rw, 2 * page, 2) >= 0)
		fail("rw- region content differs");
	if (test_check_fill(wo, page, 3) >= 0)
		fail("-w- region content differs");
	unsigned char *want = malloc(8 * page);
	test_fill(want, 8 * page, 5);
	for (int p = 0; p < 8; p++)
		if (p != 4 && p != 6 && memcmp(mix + p * page, want + p * page, page))
			fail("page %d of the split mapping differs", p);

	expect(ro, 'w', SIGSEGV, "the r-- region");
	expect(ro + page, 'w', SIGSEGV, "the r-- region's 2nd page");
	expect(rw + page, 'w', 0, "the rw- region");
	expect(wo, 'w', 0, "the -w- region");
	expect(rx, 'w', SIGSEGV, "the r-x region");
	expect(mix + page, 'w', SIGSEGV, "the r-- part of the split mapping");
	expect(mix + 3 * page, 'w', 0, "the rw- part of the split mapping");
	expect(mix + 4 * page, 'w', SIGSEGV, "the r-x part of the split mapping");
	expect(mix + 7 * page, 'w', 0, "the last rw- part of the split mapping");
	expect(mix + 6 * page, 'x', SIGSEGV, "code in the rw- part (NX)");

	expect(rx, 'x', 0, "code in the r-x region");
	expect(mix + 4 * page, 'x', 0, "code in the r-x part of the split mapping");
	if (((uint32_t (*)(void))rx)() != 42)
		fail("code in the r-x region returned the wrong value");
	if (((uint32_t (*)(void))(mix + 4 * page))() != 77)
		fail("code in the r-x part of the split mapping returned the wrong value");

	if (mprotect(ro, 2 * page, PROT_READ | PROT_WRITE))
		fail("mprotect after restore: %m");
	expect(ro, 'w', 0, "the r-- region made rw-");
	pass();
}
