/*
 * glibc's rseq registration (glibc 2.35+ registers every thread): after the
 * restore the thread is still registered at the same address, with the same
 * length and signature (registering again with them fails with EBUSY, and
 * not EINVAL/EPERM), and the kernel keeps the area's cpu_id up to date: it
 * is not RSEQ_CPU_ID_UNINITIALIZED, it matches the getcpu system call, and
 * it follows the thread when sched_setaffinity moves it to each allowed CPU.
 */
#include "lib.h"

#include <sched.h>
#include <sys/rseq.h>
#include <sys/syscall.h>

static struct rseq *area(void)
{
	return (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
}

/* The registered length: the one that makes re-registration say EBUSY. */
static int registered_len(void)
{
	int cand[2] = { 32, (int)__rseq_size };
	for (int i = 0; i < 2; i++) {
		if (syscall(SYS_rseq, area(), cand[i], 0, RSEQ_SIG) == 0)
			fail("rseq re-registration with length %d succeeded: it was not registered",
			     cand[i]);
		if (errno == EBUSY)
			return cand[i];
	}
	return -errno;
}

static unsigned sys_getcpu(void)
{
	unsigned cpu;
	if (syscall(SYS_getcpu, &cpu, NULL, NULL))
		fail("getcpu: %m");
	return cpu;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	if (__rseq_size == 0)
		skip("glibc did not register rseq (glibc.pthread.rseq=0?)");
	int len = registered_len();
	if (len < 0)
		fail("rseq re-registration before the checkpoint: %s", strerror(-len));
	test_msg("rseq area %p (offset %td), registered length %d, __rseq_size %u",
		 (void *)area(), __rseq_offset, len, __rseq_size);

	test_ready();
	test_waitsig();

	if (CORRUPT(1))
		syscall(SYS_rseq, area(), len, RSEQ_FLAG_UNREGISTER, RSEQ_SIG);
	if (CORRUPT(2))
		area()->cpu_id = RSEQ_CPU_ID_UNINITIALIZED;

	int e = syscall(SYS_rseq, area(), len, 0, RSEQ_SIG) ? errno : 0;
	if (e != EBUSY)
		fail("re-registering rseq (%p, %d, sig %#x) after restore: %s, expected EBUSY",
		     (void *)area(), len, RSEQ_SIG, e ? strerror(e) : "success (was unregistered)");

	int32_t id = (int32_t)area()->cpu_id;
	if (id == RSEQ_CPU_ID_UNINITIALIZED || id < 0)
		fail("rseq cpu_id is %d after restore", id);
	int match = 0;
	for (int i = 0; i < 100 && !match; i++)
		match = (uint32_t)area()->cpu_id == sys_getcpu();
	if (!match)
		fail("rseq cpu_id %u never matched getcpu() %u", area()->cpu_id, sys_getcpu());

	cpu_set_t orig, one;
	if (sched_getaffinity(0, sizeof(orig), &orig))
		fail("sched_getaffinity: %m");
	int moved = 0;
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, &orig))
			continue;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		if (sched_setaffinity(0, sizeof(one), &one))
			fail("sched_setaffinity(%d): %m", cpu);
		sched_yield();
		if (area()->cpu_id != (uint32_t)cpu || area()->cpu_id_start != (uint32_t)cpu)
			fail("on CPU %d the rseq area says cpu_id %u cpu_id_start %u", cpu,
			     area()->cpu_id, area()->cpu_id_start);
		moved++;
	}
	sched_setaffinity(0, sizeof(orig), &orig);
	test_msg("rseq cpu_id followed the thread over %d CPUs", moved);
	pass();
}
