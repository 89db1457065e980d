/*
 * Pending signals: with SIGUSR1, SIGUSR2, SIGRTMIN+1 and SIGRTMIN+4
 * blocked, signals are queued process-wide (kill SIGUSR1, sigqueue
 * SIGRTMIN+1 with values 1, 2, 3 and SIGRTMIN+4 with 40) and to the thread
 * (tgkill SIGUSR2, rt_tgsigqueueinfo SIGRTMIN+1 with 100). After the
 * restore sigpending() and the SigPnd/ShdPnd masks in /proc/self/status are
 * unchanged, and unblocking delivers every signal exactly once, in the
 * kernel's order (thread queue first, lower numbers first, real-time
 * instances in FIFO order) with the same si_code, si_pid and si_value.
 */
#include "lib.h"

#include <sys/syscall.h>

struct got {
	int sig, code, value;
	pid_t pid;
};
static struct got got[16];
static volatile int ngot;

static void handler(int sig, siginfo_t *si, void *uc)
{
	if (ngot < 16)
		got[ngot] = (struct got){ sig, si->si_code, si->si_value.sival_int, si->si_pid };
	ngot++;
}

static unsigned long long bit(int sig) { return 1ULL << (sig - 1); }

static unsigned long long status_mask(const char *key)
{
	char v[64];
	if (test_status_field(key, v, sizeof(v)))
		fail("no %s in /proc/self/status", key);
	return strtoull(v, NULL, 16);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	const int rt1 = SIGRTMIN + 1, rt4 = SIGRTMIN + 4;
	const int sigs[] = { SIGUSR1, SIGUSR2, rt1, rt4 };
	pid_t pid = getpid();
	pid_t tid = gettid();

	sigset_t block;
	sigemptyset(&block);
	for (int i = 0; i < 4; i++)
		sigaddset(&block, sigs[i]);
	struct sigaction sa = { .sa_sigaction = handler, .sa_flags = SA_SIGINFO, .sa_mask = block };
	for (int i = 0; i < 4; i++)
		sigaction(sigs[i], &sa, NULL);
	sigprocmask(SIG_BLOCK, &block, NULL);

	/* Process-wide. */
	kill(pid, SIGUSR1);
	for (int v = 1; v <= 3; v++)
		sigqueue(pid, rt1, (union sigval){ .sival_int = v });
	sigqueue(pid, rt4, (union sigval){ .sival_int = 40 });
	/* Thread-directed. */
	syscall(SYS_tgkill, pid, tid, SIGUSR2);
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	si.si_signo = rt1;
	si.si_code = SI_QUEUE;
	si.si_pid = pid;
	si.si_uid = getuid();
	si.si_value.sival_int = 100;
	if (syscall(SYS_rt_tgsigqueueinfo, pid, tid, rt1, &si))
		fail("rt_tgsigqueueinfo: %m");

	const unsigned long long want_thread = bit(SIGUSR2) | bit(rt1);
	const unsigned long long want_shared = bit(SIGUSR1) | bit(rt1) | bit(rt4);
	const struct got want[] = {
		{ SIGUSR2, SI_TKILL, 0, pid }, { rt1, SI_QUEUE, 100, pid },
		{ SIGUSR1, SI_USER, 0, pid },  { rt1, SI_QUEUE, 1, pid },
		{ rt1, SI_QUEUE, 2, pid },     { rt1, SI_QUEUE, 3, pid },
		{ rt4, SI_QUEUE, 40, pid },
	};
	const int nwant = sizeof(want) / sizeof(want[0]);

	test_ready();
	test_waitsig();

	if (CORRUPT(1))
		sigqueue(pid, rt4, (union sigval){ .sival_int = 41 });
	if (CORRUPT(2))
		syscall(SYS_tgkill, pid, tid, rt4);
	if (CORRUPT(3)) {	/* requeue the real-time values out of order */
		sigset_t one;
		siginfo_t a;
		sigemptyset(&one);
		sigaddset(&one, rt1);
		for (int i = 0; i < 4; i++)
			sigtimedwait(&one, &a, NULL);
		syscall(SYS_rt_tgsigqueueinfo, pid, tid, rt1, &si);
		for (int v = 2; v <= 4; v++)
			sigqueue(pid, rt1, (union sigval){ .sival_int = v == 4 ? 1 : v });
	}

	sigset_t pend;
	sigpending(&pend);
	for (int i = 0; i < 4; i++)
		if (!sigismember(&pend, sigs[i]))
			fail("signal %d is no longer pending", sigs[i]);
	unsigned long long thr = status_mask("SigPnd:"), shd = status_mask("ShdPnd:");
	if (thr != want_thread)
		fail("thread-pending mask (SigPnd) is %016llx, expected %016llx", thr, want_thread);
	if (shd != want_shared)
		fail("process-pending mask (ShdPnd) is %016llx, expected %016llx", shd, want_shared);

	sigprocmask(SIG_UNBLOCK, &block, NULL);
	if (ngot != nwant)
		fail("%d signals delivered, expected %d", ngot, nwant);
	for (int i = 0; i < nwant; i++)
		if (got[i].sig != want[i].sig || got[i].code != want[i].code ||
		    got[i].value != want[i].value || got[i].pid != want[i].pid)
			fail("delivery %d: signal %d code %d value %d pid %d, expected signal %d "
			     "code %d value %d pid %d", i, got[i].sig, got[i].code, got[i].value,
			     got[i].pid, want[i].sig, want[i].code, want[i].value, want[i].pid);
	sigpending(&pend);
	for (int i = 0; i < 4; i++)
		if (sigismember(&pend, sigs[i]))
			fail("signal %d is still pending after delivery", sigs[i]);
	pass();
}
