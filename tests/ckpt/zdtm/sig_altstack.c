/*
 * The alternate signal stack: the checkpoint is taken while a SIGUSR1
 * handler (SA_ONSTACK) runs on the alternate stack, waiting for SIGTERM.
 * After the restore the handler is still on the alternate stack
 * (sigaltstack reports SS_ONSTACK, its locals are intact), returning from it
 * resumes main() with main's frame intact, sigaltstack() then reports the
 * same stack and no SS_ONSTACK, and a new delivery runs on it again.
 */
#include "lib.h"

#include <sys/mman.h>

#define ALT_SIZE (64 * 1024)

static stack_t alt;
static int calls;
static volatile int handler_done;

static int on_altstack(const void *p)
{
	return (const char *)p >= (char *)alt.ss_sp && (const char *)p < (char *)alt.ss_sp + alt.ss_size;
}

static void h_usr1(int sig)
{
	unsigned char local[512];
	stack_t cur;

	calls++;
	test_fill(local, sizeof(local), 0x10ca1 + calls);
	if (!on_altstack(local))
		fail("handler call %d runs at %p, outside the alternate stack %p+%zu", calls,
		     (void *)local, alt.ss_sp, alt.ss_size);
	if (calls == 1) {
		test_ready();
		test_waitsig();		/* checkpointed here, on the alternate stack */
		if (CORRUPT(1))
			local[100] ^= 1;
		if (test_check_fill(local, sizeof(local), 0x10ca1 + calls) >= 0)
			fail("the handler's locals on the alternate stack changed");
		if (!on_altstack(local))
			fail("after restore the handler's frame %p is outside the alternate stack",
			     (void *)local);
	}
	if (sigaltstack(NULL, &cur))
		fail("sigaltstack: %m");
	if (!(cur.ss_flags & SS_ONSTACK) || cur.ss_sp != alt.ss_sp || cur.ss_size != alt.ss_size)
		fail("inside the handler sigaltstack reports sp %p size %zu flags %#x", cur.ss_sp,
		     cur.ss_size, cur.ss_flags);
	handler_done = calls;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	unsigned char main_local[1024];
	test_fill(main_local, sizeof(main_local), 0x3a17);

	alt.ss_sp = mmap(NULL, ALT_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	alt.ss_size = ALT_SIZE;
	alt.ss_flags = 0;
	if (alt.ss_sp == MAP_FAILED || sigaltstack(&alt, NULL))
		fail("sigaltstack: %m");
	struct sigaction sa = { .sa_handler = h_usr1, .sa_flags = SA_ONSTACK };
	sigaction(SIGUSR1, &sa, NULL);

	raise(SIGUSR1);		/* returns after SIGTERM */
	if (handler_done != 1)
		fail("the first handler call did not complete");
	if (CORRUPT(2))
		main_local[7] ^= 1;
	if (test_check_fill(main_local, sizeof(main_local), 0x3a17) >= 0)
		fail("main()'s frame changed across the handler");

	stack_t cur;
	if (CORRUPT(3)) {
		stack_t other = { .ss_sp = alt.ss_sp, .ss_size = ALT_SIZE / 2 };
		sigaltstack(&other, NULL);
	}
	if (sigaltstack(NULL, &cur))
		fail("sigaltstack: %m");
	if (cur.ss_flags != 0 || cur.ss_sp != alt.ss_sp || cur.ss_size != alt.ss_size)
		fail("outside the handler sigaltstack reports sp %p size %zu flags %#x, "
		     "expected %p %zu 0", cur.ss_sp, cur.ss_size, cur.ss_flags, alt.ss_sp,
		     alt.ss_size);
	raise(SIGUSR1);
	if (handler_done != 2)
		fail("the second handler call did not complete");
	pass();
}
