/*
 * MAP_SHARED|MAP_ANONYMOUS memory shared between the root and a forked
 * child keeps its content, and stays one object after the restore: a write by
 * either process after the restore is seen by the other. A second shared
 * anonymous region used by the root alone keeps its content too.
 */
#include "lib.h"

#include <sys/mman.h>

#define SHARED_PAGES 33
#define ALONE_PAGES 5
#define PARENT_SEED 0x5a1
#define CHILD_SEED 0x5a2

/* Layout of the shared region: [page 0: handshake words][pages 1..16 written
 * by the parent][pages 17..32 written by the child]. */
struct handshake {
	volatile uint64_t parent_word;
	volatile uint64_t child_word;
};
#define PARENT_MAGIC 0x1111222233334444ULL
#define CHILD_MAGIC 0x5555666677778888ULL

static unsigned char *shm, *alone;
static size_t page;

static unsigned char *parent_part(void) { return shm + page; }
static unsigned char *child_part(void) { return shm + 17 * page; }

static void check_both_parts(const char *who)
{
	long off = test_check_fill(parent_part(), 16 * page, PARENT_SEED);
	if (off >= 0)
		fail("%s: parent's part of the shared region differs at %ld", who, off);
	off = test_check_fill(child_part(), 16 * page, CHILD_SEED);
	if (off >= 0)
		fail("%s: child's part of the shared region differs at %ld", who, off);
}

static void child(void)
{
	struct handshake *h = (struct handshake *)shm;

	test_fill(child_part(), 16 * page, CHILD_SEED);
	test_child_ready();
	test_waitsig();

	check_both_parts("child");
	if (!CORRUPT(2))
		h->child_word = CHILD_MAGIC;
	if (test_wait_word(&h->parent_word, PARENT_MAGIC, 10))
		fail("child: the parent's write after restore is not visible (%#llx)",
		     (unsigned long long)h->parent_word);
	pass();
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	page = sysconf(_SC_PAGESIZE);

	shm = mmap(NULL, SHARED_PAGES * page, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	alone = mmap(NULL, ALONE_PAGES * page, PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shm == MAP_FAILED || alone == MAP_FAILED)
		fail("mmap: %m");
	test_fill(alone, ALONE_PAGES * page, 0xa10e);

	if (test_fork() == 0)
		child();
	test_fill(parent_part(), 16 * page, PARENT_SEED);
	test_wait_children_ready();

	test_ready();
	test_waitsig();

	struct handshake *h = (struct handshake *)shm;
	if (CORRUPT(1))
		child_part()[100] ^= 1;
	check_both_parts("parent");
	if (CORRUPT(3))
		alone[4 * page + 5] ^= 1;
	long off = test_check_fill(alone, ALONE_PAGES * page, 0xa10e);
	if (off >= 0)
		fail("unshared MAP_SHARED region differs at %ld", off);
	h->parent_word = PARENT_MAGIC;
	if (test_wait_word(&h->child_word, CHILD_MAGIC, 10))
		fail("the child's write after restore is not visible (%#llx)",
		     (unsigned long long)h->child_word);
	pass();
}
