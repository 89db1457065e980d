/*
 * The heap: memory added with sbrk() (to an unaligned break) keeps its
 * content, sbrk(0) returns the same break, and the break still moves (grow,
 * write, shrink) after the restore. Also the mm fields the kernel shows in
 * /proc/self/stat (code, data, brk, stack, argument and environment bounds)
 * and the auxiliary vector are unchanged, and malloc()ed blocks are intact.
 */
#include "lib.h"

#include <fcntl.h>

#define GROW (1024 * 1024 + 3 * 4096 + 123)
#define NR_BLOCKS 64

/* /proc/self/stat fields 26-28 and 45-51 (1-based). */
static const int mm_fields[] = { 26, 27, 28, 45, 46, 47, 48, 49, 50, 51 };
#define NR_MM (sizeof(mm_fields) / sizeof(mm_fields[0]))

static void read_mm_fields(unsigned long long *out)
{
	char buf[4096];
	int fd = open("/proc/self/stat", O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		fail("read /proc/self/stat: %m");
	close(fd);
	buf[n] = 0;
	char *p = strrchr(buf, ')');	/* field 2 may contain spaces */
	int field = 2;
	unsigned k = 0;
	for (char *tok = strtok(p + 1, " "); tok && k < NR_MM; tok = strtok(NULL, " ")) {
		field++;
		if (field == mm_fields[k])
			out[k++] = strtoull(tok, NULL, 10);
	}
	if (k != NR_MM)
		fail("short /proc/self/stat");
}

static size_t read_file(const char *path, unsigned char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	size_t total = 0;
	ssize_t n;
	if (fd < 0)
		fail("open %s: %m", path);
	while ((n = read(fd, buf + total, len - total)) > 0)
		total += n;
	close(fd);
	return total;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	size_t page = sysconf(_SC_PAGESIZE);
	unsigned char *blocks[NR_BLOCKS];

	/* malloc first, so that its arena sits below our own sbrk area. */
	for (int i = 0; i < NR_BLOCKS; i++) {
		size_t len = 16 + i * 97;
		blocks[i] = malloc(len);
		test_fill(blocks[i], len, 0xb10c + i);
	}
	test_msg("malloc'ed %d blocks", NR_BLOCKS);	/* allocates stdout's buffer too */

	unsigned char *start = sbrk(0);
	if (sbrk(GROW) == (void *)-1)
		fail("sbrk(%d): %m", GROW);
	unsigned char *brk_before = sbrk(0);
	if (brk_before != start + GROW)
		fail("sbrk(0) %p, expected %p", brk_before, start + GROW);
	test_fill(start, GROW, 0xb4c);

	unsigned long long mm_before[NR_MM];
	static unsigned char auxv_before[4096], auxv_after[4096];
	read_mm_fields(mm_before);
	size_t auxv_len = read_file("/proc/self/auxv", auxv_before, sizeof(auxv_before));

	test_ready();
	test_waitsig();

	if (CORRUPT(1))
		sbrk(page);
	if (CORRUPT(2))
		start[GROW - 1] ^= 1;
	if (CORRUPT(3))
		mm_before[5]++;

	unsigned char *brk_after = sbrk(0);
	if (brk_after != brk_before)
		fail("sbrk(0) is %p, was %p", brk_after, brk_before);
	long off = test_check_fill(start, GROW, 0xb4c);
	if (off >= 0)
		fail("sbrk'ed memory differs at offset %ld", off);
	for (int i = 0; i < NR_BLOCKS; i++)
		if (test_check_fill(blocks[i], 16 + i * 97, 0xb10c + i) >= 0)
			fail("malloc'ed block %d differs", i);

	unsigned long long mm_after[NR_MM];
	read_mm_fields(mm_after);
	for (unsigned k = 0; k < NR_MM; k++)
		if (mm_after[k] != mm_before[k])
			fail("/proc/self/stat field %d is %#llx, was %#llx", mm_fields[k],
			     mm_after[k], mm_before[k]);
	if (read_file("/proc/self/auxv", auxv_after, sizeof(auxv_after)) != auxv_len ||
	    memcmp(auxv_before, auxv_after, auxv_len))
		fail("/proc/self/auxv changed");

	/* The break still moves. */
	unsigned char *old = sbrk(3 * page);
	if (old != brk_before)
		fail("sbrk(+3 pages) returned %p, expected %p", old, brk_before);
	memset(old, 0x77, 3 * page);
	if (sbrk(-(intptr_t)(3 * page)) == (void *)-1 || sbrk(0) != brk_before)
		fail("shrinking the break back failed (%p)", sbrk(0));
	pass();
}
