/*
 * A private mapping of /dev/zero (old allocators and Fortran runtimes get
 * memory so): the kernel makes it anonymous memory, yet /proc/PID/maps
 * names the device. Pages written with data keep it, pages written with
 * zeros and pages never touched read zero, and the mapping is still a
 * private, writable one of /dev/zero after the restore. (The dump leaves
 * all-zero pages out of it, as out of anonymous memory: unlike a file's
 * private mapping, a page not written reads zero there.)
 */
#include "lib.h"

#include <fcntl.h>
#include <sys/mman.h>

#define PAGES 256
#define SEED 0xde20

static int kind(int p) { return p % 7 == 1 ? 'd' : p % 7 == 4 ? 'z' : '-'; }  /* data, zeroed, untouched */

int main(int argc, char **argv)
{
	test_init(argc, argv);
	size_t page = sysconf(_SC_PAGESIZE);
	int fd = open("/dev/zero", O_RDWR);
	if (fd < 0)
		fail("open /dev/zero: %m");
	unsigned char *m = mmap(NULL, PAGES * page, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (m == MAP_FAILED)
		fail("mmap /dev/zero: %m");
	close(fd);
	for (int p = 0; p < PAGES; p++) {
		if (kind(p) == 'd')
			test_fill(m + p * page, page, SEED + p);
		else if (kind(p) == 'z')
			memset(m + p * page, 0, page);	/* present, all zero */
	}

	test_ready();
	test_waitsig();

	if (CORRUPT(1))
		m[8 * page + 5] ^= 1;	/* page 8: data */
	if (CORRUPT(2))
		m[11 * page + 7] = 3;	/* page 11: zeroed */
	for (int p = 0; p < PAGES; p++) {
		if (kind(p) == 'd') {
			if (test_check_fill(m + p * page, page, SEED + p) >= 0)
				fail("page %d (data) has wrong content", p);
			continue;
		}
		for (size_t i = 0; i < page; i++)
			if (m[p * page + i])
				fail("page %d (%s) has byte %zu = %d", p, kind(p) == 'z' ? "zeroed" : "untouched", i,
				     m[p * page + i]);
	}
	char line[512];
	int found = 0;
	FILE *maps = fopen("/proc/self/maps", "r");
	unsigned long lo, hi;
	char perms[8];
	while (maps && fgets(line, sizeof(line), maps)) {
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 && lo == (unsigned long)m &&
		    hi == (unsigned long)m + PAGES * page)
			found = strstr(line, "/dev/zero") != NULL && !strcmp(perms, "rw-p");
	}
	if (!found)
		fail("the mapping is no longer a private, writable one of /dev/zero");
	pass();
}
