/*
 * MADV_WIPEONFORK memory in a parent and its child: the parent filled its
 * region and marked it wipe-on-fork before forking; the child found its
 * copy zeroed and filled it with its own bytes. After the restore each
 * still reads its own, the advice still holds (a fork now gets zeros),
 * and MADV_DONTFORK memory is still not inherited.
 */
#include <sys/mman.h>
#include <sys/wait.h>

#include "lib.h"

#define LEN (4 * 4096)

static unsigned char *wipe, *nofork;

static int filled(const unsigned char *p, unsigned char v)
{
	for (size_t i = 0; i < LEN; i++)
		if (p[i] != v)
			return 0;
	return 1;
}

/* Forks a child that reports whether it sees `p` zeroed (wiped) or unmapped. */
static int child_sees(const unsigned char *p, int want_unmapped)
{
	pid_t pid = fork();
	if (pid == 0) {
		if (want_unmapped)
			_exit(msync((void *)p, LEN, MS_ASYNC) != 0 && errno == ENOMEM ? 0 : 1);
		_exit(filled(p, 0) ? 0 : 1);
	}
	int status;
	waitpid(pid, &status, 0);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	wipe = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	nofork = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (wipe == MAP_FAILED || nofork == MAP_FAILED)
		fail("mmap: %m");
	memset(wipe, 0xa5, LEN);
	memset(nofork, 0x3c, LEN);
	if (madvise(wipe, LEN, MADV_WIPEONFORK) != 0 || madvise(nofork, LEN, MADV_DONTFORK) != 0)
		fail("madvise: %m");

	pid_t child = test_fork();
	if (child == 0) {
		if (!filled(wipe, 0))
			fail("the child's wipe-on-fork copy is not zeroed");
		memset(wipe, 0x5a, LEN);
		test_waitsig();
		if (CORRUPT(2))
			wipe[7] = 0;
		if (!filled(wipe, 0x5a))
			fail("the child's wipe-on-fork memory lost its bytes");
		pass();
	}

	test_ready();
	test_waitsig();

	if (CORRUPT(1))
		madvise(wipe, LEN, MADV_KEEPONFORK);
	if (!filled(wipe, 0xa5))
		fail("the parent's wipe-on-fork memory lost its bytes");
	if (!filled(nofork, 0x3c))
		fail("the parent's don't-fork memory lost its bytes");
	if (!child_sees(wipe, 0))
		fail("a new child does not get the wipe-on-fork memory zeroed");
	if (!child_sees(nofork, 1))
		fail("a new child inherits the don't-fork memory");
	pass();
}
