/*
 * signalfd: one for {SIGUSR1, SIGRTMIN+2} (SFD_NONBLOCK) with both signals
 * blocked and pending (SIGRTMIN+2 queued with value 777), and one for
 * {SIGUSR2} with nothing pending. After the restore: the fds' masks (fdinfo
 * "sigmask") are the same, reading the first returns both pending signals
 * with their siginfo, then EAGAIN; a signal raised after the restore is
 * readable through the second.
 */
#include "lib.h"

#include <fcntl.h>
#include <sys/signalfd.h>

static unsigned long long fdinfo_sigmask(int fd)
{
	char path[64], line[256];
	unsigned long long mask = 0;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	FILE *f = fopen(path, "r");
	if (!f)
		fail("open %s: %m", path);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "sigmask: %llx", &mask) == 1)
			break;
	fclose(f);
	return mask;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	const int rt2 = SIGRTMIN + 2;
	sigset_t m1, m2, all;
	sigemptyset(&m1);
	sigaddset(&m1, SIGUSR1);
	sigaddset(&m1, rt2);
	sigemptyset(&m2);
	sigaddset(&m2, SIGUSR2);
	all = m1;
	sigaddset(&all, SIGUSR2);
	sigprocmask(SIG_BLOCK, &all, NULL);
	int s1 = signalfd(-1, &m1, SFD_NONBLOCK);
	int s2 = signalfd(-1, &m2, SFD_CLOEXEC);
	if (s1 < 0 || s2 < 0)
		fail("signalfd: %m");
	kill(getpid(), SIGUSR1);
	sigqueue(getpid(), rt2, (union sigval){ .sival_int = 777 });
	unsigned long long mask1 = fdinfo_sigmask(s1), mask2 = fdinfo_sigmask(s2);

	test_ready();
	test_waitsig();

	if (CORRUPT(1)) {
		sigset_t m = m1;
		sigaddset(&m, SIGUSR2);
		signalfd(s1, &m, 0);
	}
	if (CORRUPT(2)) {
		struct signalfd_siginfo si;
		read(s1, &si, sizeof(si));
	}

	if (fdinfo_sigmask(s1) != mask1 || fdinfo_sigmask(s2) != mask2)
		fail("signalfd masks changed: %llx %llx, were %llx %llx", fdinfo_sigmask(s1),
		     fdinfo_sigmask(s2), mask1, mask2);
	struct signalfd_siginfo si[2];
	if (read(s1, &si[0], sizeof(si[0])) != sizeof(si[0]) ||
	    read(s1, &si[1], sizeof(si[1])) != sizeof(si[1]))
		fail("reading the pending signals: %m");
	if (si[0].ssi_signo != SIGUSR1 || si[0].ssi_code != SI_USER ||
	    si[0].ssi_pid != (uint32_t)getpid())
		fail("first signal: signo %u code %d pid %u", si[0].ssi_signo, si[0].ssi_code,
		     si[0].ssi_pid);
	if (si[1].ssi_signo != (uint32_t)rt2 || si[1].ssi_code != SI_QUEUE || si[1].ssi_int != 777)
		fail("second signal: signo %u code %d value %d", si[1].ssi_signo, si[1].ssi_code,
		     si[1].ssi_int);
	if (read(s1, &si[0], sizeof(si[0])) != -1 || errno != EAGAIN)
		fail("more signals readable than were pending");
	raise(SIGUSR2);
	if (read(s2, &si[0], sizeof(si[0])) != sizeof(si[0]) || si[0].ssi_signo != SIGUSR2)
		fail("a signal raised after restore is not readable through its signalfd");
	pass();
}
