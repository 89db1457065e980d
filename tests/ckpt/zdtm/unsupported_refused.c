/*
 * Refusal of an unsupported kernel object: the process holds an io_uring
 * instance (io_uring_setup), which roam cannot checkpoint. `roam
 * checkpoint` must fail with one line naming "fd N" and leave the process
 * running untouched; after SIGTERM the program checks that the io_uring fd
 * is still there, still an io_uring, and still usable (a NOP submitted via
 * io_uring_enter completes).
 */
#include "lib.h"

#include <linux/io_uring.h>
#include <sys/mman.h>
#include <sys/syscall.h>

static int ring_fd;
static struct io_uring_params params;
static unsigned char *sq_ring, *cq_ring;
static struct io_uring_sqe *sqes;

static int nop_roundtrip(void)
{
	unsigned *sq_tail = (unsigned *)(sq_ring + params.sq_off.tail);
	unsigned *sq_mask = (unsigned *)(sq_ring + params.sq_off.ring_mask);
	unsigned *sq_array = (unsigned *)(sq_ring + params.sq_off.array);
	unsigned *cq_head = (unsigned *)(cq_ring + params.cq_off.head);
	unsigned *cq_tail = (unsigned *)(cq_ring + params.cq_off.tail);
	unsigned *cq_mask = (unsigned *)(cq_ring + params.cq_off.ring_mask);
	struct io_uring_cqe *cqes = (struct io_uring_cqe *)(cq_ring + params.cq_off.cqes);

	unsigned tail = *sq_tail, idx = tail & *sq_mask;
	memset(&sqes[idx], 0, sizeof(sqes[idx]));
	sqes[idx].opcode = IORING_OP_NOP;
	sqes[idx].user_data = 0xfeed;
	sq_array[idx] = idx;
	__atomic_store_n(sq_tail, tail + 1, __ATOMIC_RELEASE);
	if (syscall(SYS_io_uring_enter, ring_fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) != 1)
		return -1;
	unsigned head = *cq_head;
	if (head == __atomic_load_n(cq_tail, __ATOMIC_ACQUIRE))
		return -1;
	struct io_uring_cqe *c = &cqes[head & *cq_mask];
	int ok = c->user_data == 0xfeed && c->res == 0;
	__atomic_store_n(cq_head, head + 1, __ATOMIC_RELEASE);
	return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	ring_fd = syscall(SYS_io_uring_setup, 4, &params);
	if (ring_fd < 0)
		skip("io_uring_setup: %m");
	sq_ring = mmap(NULL, params.sq_off.array + params.sq_entries * sizeof(unsigned),
		       PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring_fd, IORING_OFF_SQ_RING);
	cq_ring = mmap(NULL, params.cq_off.cqes + params.cq_entries * sizeof(struct io_uring_cqe),
		       PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring_fd, IORING_OFF_CQ_RING);
	sqes = mmap(NULL, params.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_POPULATE, ring_fd, IORING_OFF_SQES);
	if (sq_ring == MAP_FAILED || cq_ring == MAP_FAILED || sqes == MAP_FAILED)
		fail("mmap io_uring: %m");
	if (nop_roundtrip())
		fail("io_uring NOP before the checkpoint failed");
	test_expect_refusal("\\bfd %d\\b", ring_fd);

	test_ready();
	test_waitsig();

	if (CORRUPT(1))
		close(ring_fd);

	char link[64], target[128];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", ring_fd);
	ssize_t n = readlink(link, target, sizeof(target) - 1);
	target[n < 0 ? 0 : n] = 0;
	if (strcmp(target, "anon_inode:[io_uring]"))
		fail("fd %d is \"%s\", not the io_uring", ring_fd, target);
	if (nop_roundtrip())
		fail("io_uring NOP after the refused checkpoint failed");
	pass();
}
