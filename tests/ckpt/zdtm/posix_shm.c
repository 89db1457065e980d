/*
 * POSIX shared memory and a named semaphore (/dev/shm, node-local: roam
 * carries them with the tree) survive with their names, contents, mode and
 * sharing, even when the restore does not find them (the runner removes
 * both files once the tree is checkpointed, as on another node):
 *   "/zdtm-posix-shm-PID": 3 pages, mode 0640, filled; the root keeps an fd
 *     and a MAP_SHARED mapping of it, the child inherits the mapping;
 *   "/zdtm-posix-sem-PID": a named semaphore at value 3 (glibc maps
 *     /dev/shm/sem.NAME), shared by root and child.
 * Checked after the restore: the contents; fstat's size and mode; that the
 * name still gives the same object (shm_open again and mmap a second view:
 * a write through it shows in the first mapping); that the child's mapping
 * is that object too (the child writes a word the root must see); the
 * semaphore's value, that a post by the child reaches the root, and that
 * sem_open of its name gives it again.
 * The root removes both names at exit.
 *
 * CORRUPT(k), after the SIGTERM: 1 a byte of the object changes; 2 the name
 * is removed and made again with the same contents (another object); 3 the
 * child does not write its word; 4 the semaphore is posted once more;
 * 5 the object's mode becomes 0600.
 */
#include "lib.h"

#include <fcntl.h>
#include <semaphore.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

#define SHM_SEED 0x9051
#define PAGES 3
#define CHILD_MAGIC 0x0c0ffee0c0ffee00ULL
#define ROOT_MAGIC 0x1234567887654321ULL

static char shm_name[64], sem_name[64];
static size_t size;
static unsigned char *map;
static sem_t *sem;

static void unlink_names(void)
{
	if (getpid() == test_root_pid) {
		shm_unlink(shm_name);
		sem_unlink(sem_name);
	}
}

static void child(void)
{
	volatile uint64_t *words = (volatile uint64_t *)map;
	test_child_ready();
	test_waitsig();
	if (sem_post(sem)) /* before the word: the root counts on it then */
		fail("child: sem_post: %m");
	if (!CORRUPT(3))
		words[1] = CHILD_MAGIC;
	if (test_wait_word(&words[2], ROOT_MAGIC, 10))
		fail("child: the root's word is not in the child's mapping");
	pass();
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	size = PAGES * sysconf(_SC_PAGESIZE);
	snprintf(shm_name, sizeof(shm_name), "/zdtm-posix-shm-%d", (int)getpid());
	snprintf(sem_name, sizeof(sem_name), "/zdtm-posix-sem-%d", (int)getpid());
	atexit(unlink_names);

	int fd = shm_open(shm_name, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		fail("shm_open %s: %m", shm_name);
	if (fchmod(fd, 0640) || ftruncate(fd, size))
		fail("fchmod/ftruncate: %m");
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		fail("mmap: %m");
	test_fill(map, size, SHM_SEED);
	memset(map, 0, 64); /* the words exchanged */
	sem = sem_open(sem_name, O_CREAT | O_EXCL, 0600, 3);
	if (sem == SEM_FAILED)
		fail("sem_open %s: %m", sem_name);

	if (test_fork() == 0)
		child();

	char path[96];
	snprintf(path, sizeof(path), "/dev/shm%s", shm_name);
	test_remove_after_ckpt(path);
	snprintf(path, sizeof(path), "/dev/shm/sem.%s", sem_name + 1);
	test_remove_after_ckpt(path);
	test_wait_children_ready();
	test_ready();
	test_waitsig();

	if (CORRUPT(1))
		map[100] ^= 1;
	if (CORRUPT(2)) {
		unsigned char *copy = malloc(size);
		memcpy(copy, map, size);
		shm_unlink(shm_name);
		int again = shm_open(shm_name, O_RDWR | O_CREAT | O_EXCL, 0640);
		if (again < 0 || fchmod(again, 0640) || write(again, copy, size) != (ssize_t)size)
			fail("CORRUPT(2): %m");
		close(again);
	}
	if (CORRUPT(4))
		sem_post(sem);
	if (CORRUPT(5))
		fchmod(fd, 0600);

	unsigned char *want = malloc(size);
	test_fill(want, size, SHM_SEED);
	if (memcmp(map + 64, want + 64, size - 64))
		fail("the object's contents differ");
	struct stat st;
	if (fstat(fd, &st))
		fail("fstat: %m");
	if ((size_t)st.st_size != size || (st.st_mode & 07777) != 0640)
		fail("size %lld mode %o, want %zu 0640", (long long)st.st_size, st.st_mode & 07777, size);
	int sval = -1;
	if (sem_getvalue(sem, &sval) || (sval != 3 && sval != 4))
		fail("semaphore value %d, want 3 (or 4 once the child posted)", sval);
	free(want);

	/* The name gives the object the mapping holds. */
	int by_name = shm_open(shm_name, O_RDWR, 0);
	if (by_name < 0)
		fail("shm_open %s after the restore: %m", shm_name);
	volatile uint64_t *view = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, by_name, 0);
	if (view == MAP_FAILED)
		fail("mmap by name: %m");
	view[3] = ROOT_MAGIC;
	if (((volatile uint64_t *)map)[3] != ROOT_MAGIC)
		fail("shm_open(%s) gives another object than the mapping", shm_name);

	volatile uint64_t *words = (volatile uint64_t *)map;
	if (test_wait_word(&words[1], CHILD_MAGIC, 10))
		fail("the child's word is not in the root's mapping (%#llx)", (unsigned long long)words[1]);
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	for (int i = 0; i < 4; i++) {
		if (sem_timedwait(sem, &until))
			fail("sem_wait %d of 4 (3 + the child's post): %m", i + 1);
	}
	if (sem_getvalue(sem, &sval) || sval != 0)
		fail("semaphore value %d after 4 waits, want 0", sval);
	/* The name gives the semaphore the mapping holds. */
	sem_t *again = sem_open(sem_name, 0);
	if (again == SEM_FAILED)
		fail("sem_open %s after the restore: %m", sem_name);
	if (sem_post(again) || sem_getvalue(sem, &sval) || sval != 1)
		fail("sem_open(%s) gives another semaphore than the mapping (value %d)", sem_name, sval);
	words[2] = ROOT_MAGIC;
	pass();
}
