/*
 * A stopped process: the runner stops it with SIGSTOP before the checkpoint
 * (requested by test_stop_before_ckpt()), requires it to be stopped (State
 * T) after the restore, then sends SIGCONT and SIGTERM. The program checks
 * that the SIGCONT reached its handler before the SIGTERM, i.e. that it was
 * continued rather than never stopped or killed.
 */
#include "lib.h"

static volatile int conts;

static void on_cont(int sig) { conts++; }

int main(int argc, char **argv)
{
	test_init(argc, argv);
	struct sigaction sa = { .sa_handler = on_cont, .sa_flags = SA_RESTART };
	sigaction(SIGCONT, &sa, NULL);

	test_stop_before_ckpt();
	test_ready();
	test_waitsig();

	if (CORRUPT(1))
		conts = 0;
	if (conts < 1)
		fail("SIGCONT never reached its handler");
	test_msg("%d SIGCONT deliveries", conts);
	pass();
}
