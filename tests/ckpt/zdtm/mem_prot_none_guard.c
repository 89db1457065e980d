/*
 * PROT_NONE memory: a PROT_NONE page between two rw- pages, a large
 * PROT_NONE MAP_NORESERVE reservation, a guard page below a stack-like
 * region (as glibc makes for thread stacks), and a region written and then
 * made PROT_NONE. After the restore touching any PROT_NONE page still
 * faults (SIGSEGV, SEGV_ACCERR), the rw- pages keep their content and stay
 * writable, and the content hidden behind PROT_NONE is still there once the
 * page is made readable again.
 */
#include "lib.h"

#include <sys/mman.h>

static size_t page;

static void expect_fault(void *addr, const char *what)
{
	int code;
	int sig = test_probe(addr, 'r', &code);
	if (sig != SIGSEGV)
		fail("reading %s at %p did not fault (signal %d)", what, addr, sig);
	if (code != SEGV_ACCERR)
		fail("reading %s at %p: si_code %d, expected SEGV_ACCERR", what, addr, code);
}

static void expect_rw(void *addr, const char *what)
{
	if (test_probe(addr, 'r', NULL) || test_probe(addr, 'w', NULL))
		fail("%s at %p is not readable and writable", what, addr);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	page = sysconf(_SC_PAGESIZE);
	int anon = MAP_PRIVATE | MAP_ANONYMOUS;

	/* A: rw- | --- | rw-, all three filled before the middle was protected. */
	unsigned char *a = mmap(NULL, 3 * page, PROT_READ | PROT_WRITE, anon, -1, 0);
	/* B: a reservation never touched. */
	unsigned char *b = mmap(NULL, 256 * page, PROT_NONE, anon | MAP_NORESERVE, -1, 0);
	/* C: 8-page "thread stack" with its lowest page as guard. */
	unsigned char *c = mmap(NULL, 8 * page, PROT_READ | PROT_WRITE, anon, -1, 0);
	/* D: content hidden behind PROT_NONE. */
	unsigned char *d = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, anon, -1, 0);
	if (a == MAP_FAILED || b == MAP_FAILED || c == MAP_FAILED || d == MAP_FAILED)
		fail("mmap: %m");
	test_fill(a, 3 * page, 0xa);
	test_fill(c + page, 7 * page, 0xc);
	test_fill(d, 4 * page, 0xd);
	if (mprotect(a + page, page, PROT_NONE) || mprotect(c, page, PROT_NONE) ||
	    mprotect(d, 4 * page, PROT_NONE))
		fail("mprotect: %m");

	test_ready();
	test_waitsig();

	if (CORRUPT(1))
		mprotect(a + page, page, PROT_READ);
	if (CORRUPT(2))
		mprotect(c, page, PROT_READ | PROT_WRITE);
	if (CORRUPT(3)) {
		mprotect(d, 4 * page, PROT_READ | PROT_WRITE);
		d[3 * page + 9] ^= 1;
		mprotect(d, 4 * page, PROT_NONE);
	}

	expect_fault(a + page, "the PROT_NONE page between rw- pages");
	expect_fault(a + 2 * page - 1, "the last byte of the PROT_NONE page");
	expect_fault(b, "the PROT_NONE reservation");
	expect_fault(b + 255 * page, "the last page of the PROT_NONE reservation");
	expect_fault(c + page - 1, "the guard page");
	for (int i = 0; i < 4; i++)
		expect_fault(d + i * page, "the protected region");
	expect_rw(a, "page 0 of A");
	expect_rw(a + 2 * page, "page 2 of A");
	expect_rw(c + page, "the stack above its guard");

	if (test_check_fill(a, page, 0xa) >= 0)
		fail("page 0 of A changed");
	if (test_check_fill(c + page, 7 * page, 0xc) >= 0)
		fail("the stack-like region changed");
	if (mprotect(a + page, page, PROT_READ) || mprotect(d, 4 * page, PROT_READ))
		fail("mprotect: %m");
	if (test_check_fill(a, 3 * page, 0xa) >= 0)
		fail("the content behind the PROT_NONE page of A was lost");
	long off = test_check_fill(d, 4 * page, 0xd);
	if (off >= 0)
		fail("the content behind PROT_NONE region D differs at offset %ld", off);
	pass();
}
