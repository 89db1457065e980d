/*
 * Guard regions installed with madvise(MADV_GUARD_INSTALL) (Linux 6.13+),
 * which are not separate VMAs: after the restore the guarded pages still
 * fault, the pages around them keep their content, and MADV_GUARD_REMOVE
 * turns a guarded page back into an ordinary zero page. Skipped on kernels
 * without guard regions.
 */
#include "lib.h"

#include <sys/mman.h>

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#define MADV_GUARD_REMOVE 103
#endif

#define PAGES 8
static const int guarded[] = { 2, 5, 6 };

static int is_guarded(int p)
{
	for (unsigned i = 0; i < sizeof(guarded) / sizeof(guarded[0]); i++)
		if (guarded[i] == p)
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	size_t page = sysconf(_SC_PAGESIZE);

	unsigned char *m = mmap(NULL, PAGES * page, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		fail("mmap: %m");
	test_fill(m, PAGES * page, 0x9a);
	if (madvise(m + 2 * page, page, MADV_GUARD_INSTALL)) {
		if (errno == EINVAL)
			skip("MADV_GUARD_INSTALL not supported by this kernel");
		fail("madvise(MADV_GUARD_INSTALL): %m");
	}
	if (madvise(m + 5 * page, 2 * page, MADV_GUARD_INSTALL))
		fail("madvise(MADV_GUARD_INSTALL): %m");

	test_ready();
	test_waitsig();

	if (CORRUPT(1))
		madvise(m + 5 * page, page, MADV_GUARD_REMOVE);
	if (CORRUPT(2))
		m[7 * page + 1] ^= 1;

	for (int p = 0; p < PAGES; p++) {
		int code, sig = test_probe(m + p * page, 'r', &code);
		if (is_guarded(p) && sig != SIGSEGV)
			fail("guarded page %d does not fault (signal %d)", p, sig);
		if (!is_guarded(p) && sig)
			fail("page %d faults (signal %d, code %d)", p, sig, code);
	}
	/* Content of the unguarded pages: compare page by page with a fresh fill. */
	unsigned char *want = malloc(PAGES * page);
	test_fill(want, PAGES * page, 0x9a);
	for (int p = 0; p < PAGES; p++)
		if (!is_guarded(p) && memcmp(m + p * page, want + p * page, page))
			fail("unguarded page %d differs", p);

	if (madvise(m + 2 * page, page, MADV_GUARD_REMOVE))
		fail("madvise(MADV_GUARD_REMOVE): %m");
	if (test_probe(m + 2 * page, 'w', NULL))
		fail("page 2 still faults after MADV_GUARD_REMOVE");
	for (size_t i = 0; i < page; i++)
		if (m[2 * page + i])
			fail("page 2 is not zero after MADV_GUARD_REMOVE");
	pass();
}
