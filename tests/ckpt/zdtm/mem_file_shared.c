/*
 * A MAP_SHARED file mapping written before the checkpoint keeps its content,
 * and after the restore it is still the file: writes through the mapping
 * reach the file (read back with pread), writes to the file appear in the
 * mapping.
 */
#include "lib.h"

#include <fcntl.h>
#include <sys/mman.h>

#define FILE_PAGES 8
#define MAP_OFF_PAGES 1
#define MAP_PAGES 6

int main(int argc, char **argv)
{
	test_init(argc, argv);
	size_t page = sysconf(_SC_PAGESIZE);
	const char *path = "mem_file_shared.data";

	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, FILE_PAGES * page))
		fail("create %s: %m", path);
	unsigned char *m = mmap(NULL, MAP_PAGES * page, PROT_READ | PROT_WRITE,
				MAP_SHARED, fd, MAP_OFF_PAGES * page);
	if (m == MAP_FAILED)
		fail("mmap: %m");
	close(fd);
	/* Dirty page-cache pages, deliberately not msync'ed. */
	test_fill(m, MAP_PAGES * page, 0x54a3);

	test_ready();
	test_waitsig();

	if (CORRUPT(1))
		m[2 * page] ^= 1;
	long off = test_check_fill(m, MAP_PAGES * page, 0x54a3);
	if (off >= 0)
		fail("shared mapping content differs at offset %ld", off);

	fd = open(path, O_RDWR);
	if (fd < 0)
		fail("reopen: %m");
	unsigned char *buf = malloc(FILE_PAGES * page);
	if (pread(fd, buf, FILE_PAGES * page, 0) != (ssize_t)(FILE_PAGES * page))
		fail("pread: %m");
	if (memcmp(buf + MAP_OFF_PAGES * page, m, MAP_PAGES * page))
		fail("the file does not hold what the mapping holds");

	/* Mapping -> file. */
	const char msg[] = "written through the mapping after restore";
	if (!CORRUPT(2))
		memcpy(m + 3 * page + 100, msg, sizeof(msg));
	char rb[sizeof(msg)];
	if (pread(fd, rb, sizeof(rb), (MAP_OFF_PAGES + 3) * page + 100) != (ssize_t)sizeof(rb))
		fail("pread: %m");
	if (memcmp(rb, msg, sizeof(msg)))
		fail("a write through the mapping did not reach the file");
	if (msync(m, MAP_PAGES * page, MS_SYNC))
		fail("msync: %m");

	/* File -> mapping. */
	const char msg2[] = "written to the file after restore";
	if (pwrite(fd, msg2, sizeof(msg2), (MAP_OFF_PAGES + 5) * page + 7) != (ssize_t)sizeof(msg2))
		fail("pwrite: %m");
	if (memcmp(m + 5 * page + 7, msg2, sizeof(msg2)))
		fail("a write to the file does not show in the mapping");
	pass();
}
