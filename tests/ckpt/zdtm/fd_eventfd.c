/*
 * eventfd: a counter of 12345 (EFD_NONBLOCK) and an EFD_SEMAPHORE one at 3
 * (EFD_CLOEXEC). After the restore reads give the same counts (12345 at
 * once; 1, 1, 1 for the semaphore), then EAGAIN, and writes work again.
 */
#include "lib.h"

#include <fcntl.h>
#include <sys/eventfd.h>

int main(int argc, char **argv)
{
	test_init(argc, argv);
	int counter = eventfd(12000, EFD_NONBLOCK);
	int sem = eventfd(0, EFD_SEMAPHORE | EFD_CLOEXEC | EFD_NONBLOCK);
	if (counter < 0 || sem < 0)
		fail("eventfd: %m");
	uint64_t v = 345;
	if (write(counter, &v, 8) != 8)
		fail("write: %m");
	v = 3;
	if (write(sem, &v, 8) != 8)
		fail("write: %m");

	test_ready();
	test_waitsig();

	if (CORRUPT(1)) {
		v = 1;
		write(counter, &v, 8);
	}
	if (CORRUPT(2)) {
		close(sem);
		sem = eventfd(3, EFD_CLOEXEC | EFD_NONBLOCK);
	}

	if (read(counter, &v, 8) != 8 || v != 12345)
		fail("counter read %llu, expected 12345", (unsigned long long)v);
	if (read(counter, &v, 8) != -1 || errno != EAGAIN)
		fail("counter is not empty after one read");
	for (int i = 0; i < 3; i++)
		if (read(sem, &v, 8) != 8 || v != 1)
			fail("semaphore read %d gave %llu, expected 1", i, (unsigned long long)v);
	if (read(sem, &v, 8) != -1 || errno != EAGAIN)
		fail("semaphore is not empty after three reads");
	if (!(fcntl(sem, F_GETFD) & FD_CLOEXEC) || !(fcntl(counter, F_GETFL) & O_NONBLOCK))
		fail("flags changed");
	v = 7;
	if (write(counter, &v, 8) != 8 || read(counter, &v, 8) != 8 || v != 7)
		fail("the counter does not work after restore");
	pass();
}
