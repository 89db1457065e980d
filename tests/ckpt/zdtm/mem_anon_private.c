/*
 * Private anonymous memory of several sizes, filled with pseudo-random
 * content, survives checkpoint/restore byte for byte at the same addresses;
 * untouched pages of a partially written region still read as zero; memory
 * inherited copy-on-write by a child stays private to each process after
 * the restore (a write by the child is not seen by the parent).
 */
#include "lib.h"

#include <sys/mman.h>

#define NR_REGIONS 4
static const size_t region_pages[NR_REGIONS] = { 1, 3, 257, 4096 + 5 };
static unsigned char *region[NR_REGIONS];
static size_t page;

#define SPARSE_PAGES 64
static unsigned char *sparse;

/* Shared copy-on-write with the child after fork. */
static unsigned char *cow;
#define COW_PAGES 8
#define COW_SEED 0xc0111

static void check_regions(void)
{
	for (int i = 0; i < NR_REGIONS; i++) {
		long off = test_check_fill(region[i], region_pages[i] * page, 0x1000 + i);
		if (off >= 0)
			fail("region %d (%zu pages at %p) differs at offset %ld", i,
			     region_pages[i], region[i], off);
	}
	for (int p = 0; p < SPARSE_PAGES; p++) {
		unsigned char *pg = sparse + p * page;
		if (p % 2) {
			long off = test_check_fill(pg, page, 0x2000 + p);
			if (off >= 0)
				fail("sparse page %d differs at offset %ld", p, off);
		} else {
			for (size_t j = 0; j < page; j++)
				if (pg[j])
					fail("untouched sparse page %d byte %zu is %#x, not 0",
					     p, j, pg[j]);
		}
	}
}

static void child(void)
{
	test_child_ready();
	test_waitsig();
	if (CORRUPT(2))
		cow[page] ^= 1;
	/* The child still sees the content it inherited ... */
	long off = test_check_fill(cow, COW_PAGES * page, COW_SEED);
	if (off >= 0)
		fail("child: inherited copy-on-write region differs at offset %ld", off);
	/* ... and its writes stay private: the parent checks it cannot see them. */
	memset(cow, 0xee, COW_PAGES * page);
	pass();
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	page = sysconf(_SC_PAGESIZE);

	for (int i = 0; i < NR_REGIONS; i++) {
		region[i] = mmap(NULL, region_pages[i] * page, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (region[i] == MAP_FAILED)
			fail("mmap %zu pages: %m", region_pages[i]);
		test_fill(region[i], region_pages[i] * page, 0x1000 + i);
	}
	sparse = mmap(NULL, SPARSE_PAGES * page, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cow = mmap(NULL, COW_PAGES * page, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (sparse == MAP_FAILED || cow == MAP_FAILED)
		fail("mmap: %m");
	for (int p = 1; p < SPARSE_PAGES; p += 2)
		test_fill(sparse + p * page, page, 0x2000 + p);
	test_fill(cow, COW_PAGES * page, COW_SEED);

	if (test_fork() == 0)
		child();
	test_wait_children_ready();

	test_ready();
	test_waitsig();

	if (CORRUPT(1))
		region[3][1234567] ^= 0x40;
	if (CORRUPT(3))
		sparse[10 * page + 77] = 1;
	check_regions();

	/* Let the child overwrite its copy, then make sure ours is intact. */
	if (test_reap_children())
		fail("child failed");
	if (CORRUPT(4))
		memset(cow + 3 * page, 0xee, page);
	long off = test_check_fill(cow, COW_PAGES * page, COW_SEED);
	if (off >= 0)
		fail("parent's copy-on-write region changed at offset %ld (child's write leaked?)", off);
	pass();
}
