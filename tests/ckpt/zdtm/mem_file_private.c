/*
 * A file mapped MAP_PRIVATE (read-write, at a non-zero offset, plus a
 * read-only mapping of the same file): the pages written before the
 * checkpoint keep their new content, the unwritten ones still come from the
 * file. Proof of the latter: after the restore the file is changed with
 * pwrite() and an unwritten page of the private mapping shows the change
 * (it maps the page cache), while a written page does not (it is a private
 * copy). A page written with zeros (the dynamic loader clears the tail of
 * each library's last data page so) must come back zero, not as the file's
 * bytes: a dump that leaves out zero pages, right for anonymous memory,
 * must not do it here (python3 crashed in a move made right after it
 * loaded libpython).
 */
#include "lib.h"

#include <fcntl.h>
#include <sys/mman.h>

#define FILE_PAGES 16
#define MAP_OFF_PAGES 2
#define MAP_PAGES 12
#define FILE_SEED 0xf11e
#define COW_SEED 0xc0c0

static size_t page;
static const int written[] = { 1, 5, 6, 11 };
#define ZEROED 8	/* written with zeros */

static int is_written(int p)
{
	for (unsigned i = 0; i < sizeof(written) / sizeof(written[0]); i++)
		if (written[i] == p)
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	page = sysconf(_SC_PAGESIZE);

	unsigned char *content = malloc(FILE_PAGES * page);
	test_fill(content, FILE_PAGES * page, FILE_SEED);
	int fd = open("mem_file_private.data", O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, content, FILE_PAGES * page) != (ssize_t)(FILE_PAGES * page))
		fail("create data file: %m");

	unsigned char *m = mmap(NULL, MAP_PAGES * page, PROT_READ | PROT_WRITE,
				MAP_PRIVATE, fd, MAP_OFF_PAGES * page);
	unsigned char *ro = mmap(NULL, FILE_PAGES * page, PROT_READ, MAP_PRIVATE, fd, 0);
	if (m == MAP_FAILED || ro == MAP_FAILED)
		fail("mmap: %m");
	close(fd);

	for (int p = 0; p < MAP_PAGES; p++) {
		if (is_written(p))
			test_fill(m + p * page, page, COW_SEED + p);
		else if (p == ZEROED)
			memset(m + p * page, 0, page);
		else if (p % 2)
			(void)*(volatile unsigned char *)(m + p * page); /* read-fault */
	}

	test_ready();
	test_waitsig();

	if (CORRUPT(1))
		m[6 * page + 3] ^= 1;
	if (CORRUPT(2))
		m[3 * page + 3] ^= 1;	/* makes page 3 a private copy, too */
	if (CORRUPT(3))		/* the zeroed page taken from the file again */
		memcpy(m + ZEROED * page, content + (MAP_OFF_PAGES + ZEROED) * page, page);
	for (int p = 0; p < MAP_PAGES; p++) {
		long off;
		if (p == ZEROED) {
			for (size_t i = 0; i < page; i++)
				if (m[p * page + i])
					fail("page %d, written with zeros, has byte %zu = %d (the file's?)", p, i, m[p * page + i]);
			continue;
		}
		if (is_written(p))
			off = test_check_fill(m + p * page, page, COW_SEED + p);
		else
			off = memcmp(m + p * page, content + (MAP_OFF_PAGES + p) * page, page) ? 0 : -1;
		if (off >= 0)
			fail("private mapping page %d (%s) has wrong content", p,
			     is_written(p) ? "written" : "from the file");
	}
	if (memcmp(ro, content, FILE_PAGES * page))
		fail("read-only private mapping differs from the file");

	/* Change every page of the file: unwritten pages must follow. */
	fd = open("mem_file_private.data", O_RDWR);
	if (fd < 0)
		fail("reopen data file: %m");
	unsigned char *fresh = malloc(FILE_PAGES * page);
	test_fill(fresh, FILE_PAGES * page, FILE_SEED + 1);
	if (pwrite(fd, fresh, FILE_PAGES * page, 0) != (ssize_t)(FILE_PAGES * page))
		fail("pwrite: %m");
	for (int p = 0; p < MAP_PAGES; p++) {
		if (p == ZEROED) {
			if (m[p * page] || memcmp(m + p * page, m + p * page + 1, page - 1))
				fail("page %d, written with zeros, changed with the file", p);
			continue;
		}
		const unsigned char *want = is_written(p) ? NULL : fresh + (MAP_OFF_PAGES + p) * page;
		if (want && memcmp(m + p * page, want, page))
			fail("unwritten page %d of the private mapping no longer follows the file "
			     "(restored as anonymous memory?)", p);
		if (!want && test_check_fill(m + p * page, page, COW_SEED + p) >= 0)
			fail("written page %d changed with the file", p);
	}
	if (memcmp(ro, fresh, FILE_PAGES * page))
		fail("read-only private mapping does not follow the file");
	pass();
}
