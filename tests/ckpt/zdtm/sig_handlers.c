/*
 * Signal dispositions: handlers with SA_SIGINFO, SA_RESTART, SA_ONSTACK,
 * SA_NODEFER, SA_RESETHAND and sa_mask for several signals, ignored signals,
 * SIG_DFL with flags. After the restore the raw rt_sigaction() of every
 * signal 1..64 (handler, flags, restorer, mask) is what it was, and raising
 * each handled signal runs the right handler, with the right siginfo, the
 * right blocked mask inside it and on the alternate stack when asked; the
 * SA_RESETHAND handler resets to SIG_DFL after one delivery.
 */
#include "lib.h"

#include <sys/syscall.h>

struct ksigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};

static struct ksigaction before[65];
static stack_t alt;

struct hit {
	int sig;
	const char *handler;
	int si_signo, si_code;
	sigset_t blocked;
	int on_altstack;
};
static struct hit last;

static int on_altstack(void)
{
	char here;
	return (char *)&here >= (char *)alt.ss_sp && (char *)&here < (char *)alt.ss_sp + alt.ss_size;
}

static void record(const char *name, int sig, siginfo_t *si)
{
	last.sig = sig;
	last.handler = name;
	last.si_signo = si ? si->si_signo : 0;
	last.si_code = si ? si->si_code : 0;
	sigprocmask(SIG_SETMASK, NULL, &last.blocked);
	last.on_altstack = on_altstack();
}

static void h_usr1(int sig, siginfo_t *si, void *uc) { record("h_usr1", sig, si); }
static void h_usr2(int sig) { record("h_usr2", sig, NULL); }
static void h_hup(int sig) { record("h_hup", sig, NULL); }
static void h_rt(int sig, siginfo_t *si, void *uc) { record("h_rt", sig, si); }

struct spec {
	int sig;
	void *handler;		/* or SIG_IGN / SIG_DFL */
	const char *name;
	int flags;
	int mask[3];
};

static struct spec specs[] = {
	{ SIGUSR1, h_usr1, "h_usr1", SA_SIGINFO | SA_RESTART, { SIGUSR2, SIGINT } },
	{ SIGUSR2, h_usr2, "h_usr2", SA_ONSTACK | SA_NODEFER, { SIGHUP } },
	{ SIGHUP, h_hup, "h_hup", SA_RESETHAND, { 0 } },
	{ 0 /* SIGRTMIN+3 */, h_rt, "h_rt", SA_SIGINFO | SA_NODEFER | SA_RESTART | SA_ONSTACK,
	  { 0 /* SIGRTMIN+5 */, SIGUSR1 } },
	{ SIGPIPE, SIG_IGN, NULL, 0, { 0 } },
	{ SIGWINCH, SIG_IGN, NULL, SA_RESTART, { SIGUSR1 } },
	{ SIGCHLD, SIG_DFL, NULL, SA_NOCLDSTOP | SA_NOCLDWAIT, { 0 } },
	{ SIGINT, SIG_DFL, NULL, 0, { 0 } },
};
#define NR_SPECS (sizeof(specs) / sizeof(specs[0]))

static void get_ksig(int sig, struct ksigaction *k)
{
	memset(k, 0, sizeof(*k));
	if (syscall(SYS_rt_sigaction, sig, NULL, k, 8))
		fail("rt_sigaction(%d): %m", sig);
}

static void install(struct spec *s)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	if (s->flags & SA_SIGINFO)
		sa.sa_sigaction = s->handler;
	else
		sa.sa_handler = s->handler;
	sa.sa_flags = s->flags;
	sigemptyset(&sa.sa_mask);
	for (int i = 0; i < 3 && s->mask[i]; i++)
		sigaddset(&sa.sa_mask, s->mask[i]);
	if (sigaction(s->sig, &sa, NULL))
		fail("sigaction(%d): %m", s->sig);
}

static void check_delivery(struct spec *s)
{
	memset(&last, 0, sizeof(last));
	raise(s->sig);
	if (last.sig != s->sig || last.handler != s->name)
		fail("raising signal %d ran %s for signal %d, expected %s", s->sig,
		     last.handler ? last.handler : "nothing", last.sig, s->name);
	if ((s->flags & SA_SIGINFO) && (last.si_signo != s->sig || last.si_code != SI_TKILL))
		fail("signal %d: siginfo has signo %d code %d", s->sig, last.si_signo, last.si_code);
	for (int i = 0; i < 3 && s->mask[i]; i++)
		if (!sigismember(&last.blocked, s->mask[i]))
			fail("signal %d: sa_mask signal %d not blocked in the handler", s->sig,
			     s->mask[i]);
	if (sigismember(&last.blocked, s->sig) != !(s->flags & SA_NODEFER))
		fail("signal %d: blocked in its own handler: %d, SA_NODEFER: %d", s->sig,
		     sigismember(&last.blocked, s->sig), !!(s->flags & SA_NODEFER));
	if (last.on_altstack != !!(s->flags & SA_ONSTACK))
		fail("signal %d: handler on the alternate stack: %d, SA_ONSTACK: %d", s->sig,
		     last.on_altstack, !!(s->flags & SA_ONSTACK));
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	specs[3].sig = SIGRTMIN + 3;
	specs[3].mask[0] = SIGRTMIN + 5;

	alt.ss_size = 64 * 1024;
	alt.ss_sp = malloc(alt.ss_size);
	if (sigaltstack(&alt, NULL))
		fail("sigaltstack: %m");
	for (unsigned i = 0; i < NR_SPECS; i++)
		install(&specs[i]);
	for (int sig = 1; sig <= 64; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			get_ksig(sig, &before[sig]);

	test_ready();
	test_waitsig();

	if (CORRUPT(1)) {
		specs[0].flags &= ~SA_RESTART;
		install(&specs[0]);
	}
	if (CORRUPT(2)) {
		struct sigaction sa = { .sa_handler = SIG_DFL };
		sigaction(SIGWINCH, &sa, NULL);
	}
	if (CORRUPT(3)) {	/* the mask changes but the table check is fooled */
		specs[0].mask[0] = 0;
		install(&specs[0]);
		get_ksig(SIGUSR1, &before[SIGUSR1]);
		specs[0].mask[0] = SIGUSR2;
	}
	if (CORRUPT(4)) {	/* the handler runs off the alternate stack */
		stack_t off = { .ss_flags = SS_DISABLE };
		sigaltstack(&off, NULL);
	}

	for (int sig = 1; sig <= 64; sig++) {
		struct ksigaction k;
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		get_ksig(sig, &k);
		if (memcmp(&k, &before[sig], sizeof(k)))
			fail("rt_sigaction(%d) changed: handler %p flags %#lx restorer %p mask %#llx, "
			     "was %p %#lx %p %#llx", sig, k.handler, k.flags, k.restorer,
			     (unsigned long long)k.mask, before[sig].handler, before[sig].flags,
			     before[sig].restorer, (unsigned long long)before[sig].mask);
	}
	for (unsigned i = 0; i < 4; i++)
		check_delivery(&specs[i]);
	struct ksigaction k;
	get_ksig(SIGHUP, &k);
	if (k.handler != SIG_DFL)
		fail("SA_RESETHAND: SIGHUP's handler is %p after one delivery", k.handler);
	pass();
}
