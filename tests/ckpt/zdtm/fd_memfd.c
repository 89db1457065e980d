/*
 * memfd (memfd_create) files survive with their name, exact size, contents,
 * seals, and each description's offset and flags:
 *   "zdtm-data": 3 pages and 100 bytes (a size no page multiple), sealed
 *     against shrinking and growing, read through an fd at offset 5000 and
 *     through a second description (opened again via /proc/self/fd,
 *     O_RDONLY) at offset 77;
 *   "zdtm-sealed": sealed against writes and against more seals;
 *   "zdtm-plain": made without MFD_ALLOW_SEALING (so F_SEAL_SEAL only);
 *   "zdtm-map": mapped MAP_SHARED by the root, its fd closed (the mapping
 *     alone holds it), and shared with a forked child: after the restore a
 *     write by either is seen by the other (one object, not two copies).
 * Checked after the restore: /proc/self/fd links name the memfds, fstat
 * sizes, contents, offsets, access modes, F_GET_SEALS, that the seals
 * still hold (growing, shrinking and writing are refused), and the
 * mapping's contents and sharing.
 *
 * CORRUPT(k), after the SIGTERM: 1 a byte of zdtm-data changes; 2 the
 * first fd's offset moves; 3 zdtm-data's fd is replaced by another memfd
 * with the same contents and another name; 4 zdtm-plain gets a seal it did
 * not have; 5 the child does not write its word to the shared mapping;
 * 6 a byte of the mapping changes before the parent checks it.
 */
#include "lib.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#define F_GET_SEALS 1034
#define F_SEAL_SEAL 0x0001
#define F_SEAL_SHRINK 0x0002
#define F_SEAL_GROW 0x0004
#define F_SEAL_WRITE 0x0008
#endif

#define DATA_SEED 0xd47a
#define SEALED_SEED 0x5ea1
#define MAP_SEED 0x3a9
#define MAP_PAGES 8
#define PARENT_MAGIC 0x1111222233334444ULL
#define CHILD_MAGIC 0x5555666677778888ULL

static size_t page;
static size_t data_size;
static unsigned char *map;

static int make(const char *name, unsigned flags, const void *data, size_t size)
{
	int fd = memfd_create(name, flags);
	if (fd < 0)
		fail("memfd_create %s: %m", name);
	if (size && write(fd, data, size) != (ssize_t)size)
		fail("write %s: %m", name);
	return fd;
}

static void check_link(int fd, const char *name)
{
	char link[256], want[256];
	test_fd_link(fd, link, sizeof(link));
	snprintf(want, sizeof(want), "/memfd:%s (deleted)", name);
	if (strcmp(link, want))
		fail("fd %d is '%s', want '%s'", fd, link, want);
}

static void check_seals(int fd, const char *name, int want)
{
	int seals = fcntl(fd, F_GET_SEALS);
	if (seals != want)
		fail("%s: seals %#x, want %#x", name, seals, want);
}

static void check_contents(int fd, const char *name, size_t size, unsigned seed)
{
	struct stat st;
	if (fstat(fd, &st))
		fail("fstat %s: %m", name);
	if ((size_t)st.st_size != size)
		fail("%s: size %lld, want %zu", name, (long long)st.st_size, size);
	unsigned char *want = malloc(size), *got = malloc(size);
	test_fill(want, size, seed);
	if (pread(fd, got, size, 0) != (ssize_t)size)
		fail("pread %s: %m", name);
	for (size_t i = 0; i < size; i++)
		if (got[i] != want[i])
			fail("%s differs at byte %zu", name, i);
	free(want);
	free(got);
}

static void child(void)
{
	volatile uint64_t *words = (volatile uint64_t *)map;
	test_child_ready();
	test_waitsig();
	if (test_check_fill(map + page, (MAP_PAGES - 1) * page, MAP_SEED) >= 0)
		fail("child: the mapped memfd's contents differ");
	if (!CORRUPT(5))
		words[1] = CHILD_MAGIC;
	if (test_wait_word(&words[0], PARENT_MAGIC, 10))
		fail("child: the parent's write after restore is not visible (%#llx)", (unsigned long long)words[0]);
	pass();
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	page = sysconf(_SC_PAGESIZE);
	data_size = 3 * page + 100;

	unsigned char *buf = malloc(data_size);
	test_fill(buf, data_size, DATA_SEED);
	int data = make("zdtm-data", MFD_ALLOW_SEALING, buf, data_size);
	if (fcntl(data, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW))
		fail("seal zdtm-data: %m");
	if (lseek(data, 5000, SEEK_SET) != 5000)
		fail("lseek: %m");
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", data);
	int data_ro = open(path, O_RDONLY);
	if (data_ro < 0)
		fail("reopen zdtm-data: %m");
	if (lseek(data_ro, 77, SEEK_SET) != 77)
		fail("lseek: %m");

	test_fill(buf, 2 * page, SEALED_SEED);
	int sealed = make("zdtm-sealed", MFD_ALLOW_SEALING, buf, 2 * page);
	if (fcntl(sealed, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SEAL))
		fail("seal zdtm-sealed: %m");
	int plain = make("zdtm-plain", 0, "plain", 5);
	free(buf);

	int mfd = make("zdtm-map", MFD_ALLOW_SEALING, NULL, 0);
	if (ftruncate(mfd, MAP_PAGES * page))
		fail("ftruncate: %m");
	map = mmap(NULL, MAP_PAGES * page, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (map == MAP_FAILED)
		fail("mmap zdtm-map: %m");
	close(mfd);
	test_fill(map + page, (MAP_PAGES - 1) * page, MAP_SEED);

	if (test_fork() == 0)
		child();
	test_wait_children_ready();
	test_ready();
	test_waitsig();

	if (CORRUPT(1)) {
		unsigned char b;
		if (pread(data, &b, 1, 4000) == 1) {
			b ^= 1;
			(void)!pwrite(data, &b, 1, 4000);
		}
	}
	if (CORRUPT(2))
		lseek(data, 5001, SEEK_SET);
	if (CORRUPT(3)) {
		unsigned char *copy = malloc(data_size);
		(void)!pread(data, copy, data_size, 0);
		int other = make("zdtm-other", MFD_ALLOW_SEALING, copy, data_size);
		fcntl(other, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
		lseek(other, 5000, SEEK_SET);
		dup2(other, data);
		close(other);
		free(copy);
	}
	if (CORRUPT(4))
		plain = make("zdtm-plain", MFD_ALLOW_SEALING, "plain", 5), fcntl(plain, F_ADD_SEALS, F_SEAL_GROW);

	check_link(data, "zdtm-data");
	check_link(data_ro, "zdtm-data");
	check_link(sealed, "zdtm-sealed");
	check_link(plain, "zdtm-plain");
	check_contents(data, "zdtm-data", data_size, DATA_SEED);
	check_contents(sealed, "zdtm-sealed", 2 * page, SEALED_SEED);
	if (lseek(data, 0, SEEK_CUR) != 5000)
		fail("zdtm-data's fd is at %lld, want 5000", (long long)lseek(data, 0, SEEK_CUR));
	if (lseek(data_ro, 0, SEEK_CUR) != 77)
		fail("zdtm-data's second description is at %lld, want 77", (long long)lseek(data_ro, 0, SEEK_CUR));
	if ((fcntl(data, F_GETFL) & O_ACCMODE) != O_RDWR || (fcntl(data_ro, F_GETFL) & O_ACCMODE) != O_RDONLY)
		fail("access modes %#x and %#x, want O_RDWR and O_RDONLY", fcntl(data, F_GETFL), fcntl(data_ro, F_GETFL));
	check_seals(data, "zdtm-data", F_SEAL_SHRINK | F_SEAL_GROW);
	check_seals(sealed, "zdtm-sealed", F_SEAL_WRITE | F_SEAL_SEAL);
	check_seals(plain, "zdtm-plain", F_SEAL_SEAL);
	if (ftruncate(data, data_size + 1) == 0 || ftruncate(data, page) == 0)
		fail("zdtm-data grew or shrank despite its seals");
	if (pwrite(sealed, "x", 1, 0) == 1)
		fail("zdtm-sealed took a write despite F_SEAL_WRITE");
	if (fcntl(sealed, F_ADD_SEALS, F_SEAL_GROW) == 0)
		fail("zdtm-sealed took a seal despite F_SEAL_SEAL");
	char p5[5];
	if (pread(plain, p5, 5, 0) != 5 || memcmp(p5, "plain", 5))
		fail("zdtm-plain's contents differ");

	if (CORRUPT(6))
		map[page + 17] ^= 1;
	if (test_check_fill(map + page, (MAP_PAGES - 1) * page, MAP_SEED) >= 0)
		fail("the mapped memfd's contents differ");
	volatile uint64_t *words = (volatile uint64_t *)map;
	words[0] = PARENT_MAGIC;
	if (test_wait_word(&words[1], CHILD_MAGIC, 10))
		fail("the child's write after restore is not visible (%#llx)", (unsigned long long)words[1]);
	pass();
}
