/*
 * A large sparse mapping (512 MiB, MAP_NORESERVE, MADV_NOHUGEPAGE) with a
 * few touched pages: pages written with data keep it, pages written with
 * zeros and pages only read read back zero, every other byte reads zero, and
 * the restore does not populate the untouched part (RssAnon after the
 * restore is at most 8 MiB above what it was).
 */
#include "lib.h"

#include <sys/mman.h>

#define LEN (512UL << 20)
#define DATA_STRIDE 1009	/* pages */

static long rss_anon_kb(void)
{
	char v[64];
	if (test_status_field("RssAnon:", v, sizeof(v)))
		fail("no RssAnon in /proc/self/status");
	return atol(v);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	size_t page = sysconf(_SC_PAGESIZE);
	size_t pages = LEN / page;

	unsigned char *m = mmap(NULL, LEN, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		fail("mmap: %m");
	if (madvise(m, LEN, MADV_NOHUGEPAGE))
		fail("madvise(MADV_NOHUGEPAGE): %m");
	int nr_data = 0;
	for (size_t p = 0; p < pages; p += DATA_STRIDE, nr_data++)
		test_fill(m + p * page, page, 0x5a00 + p);
	for (size_t p = 1; p <= 3; p++)		/* touched, all zero */
		memset(m + p * page, 0, page);
	for (size_t p = 5; p <= 9; p++)		/* read-faulted: zero page */
		(void)*(volatile unsigned char *)(m + p * page + 17);
	long rss_before = rss_anon_kb();
	test_msg("%d data pages, RssAnon %ld kB", nr_data, rss_before);

	test_ready();
	test_waitsig();

	if (CORRUPT(1))
		m[2 * page + 100] = 1;
	if (CORRUPT(2))
		m[DATA_STRIDE * 7 * page + 5] ^= 1;
	if (CORRUPT(3))
		memset(m + 100 * page, 0, 4000 * page);

	long rss_after = rss_anon_kb();
	test_msg("RssAnon after restore %ld kB", rss_after);
	if (rss_after > rss_before + 8192)
		fail("RssAnon grew from %ld kB to %ld kB: the sparse mapping was populated",
		     rss_before, rss_after);

	for (size_t p = 0; p < pages; p++) {
		const uint64_t *w = (const uint64_t *)(m + p * page);
		if (p % DATA_STRIDE == 0) {
			if (test_check_fill(w, page, 0x5a00 + p) >= 0)
				fail("data page %zu differs", p);
			continue;
		}
		for (size_t i = 0; i < page / 8; i++)
			if (w[i])
				fail("page %zu word %zu is %#llx, not zero", p, i,
				     (unsigned long long)w[i]);
	}
	pass();
}
