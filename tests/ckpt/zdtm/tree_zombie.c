/*
 * Zombies: children that have exited and that the parent has not waited
 * for yet. One exited with 42 (and led a group of its own), one was killed
 * by SIGUSR1, one renamed itself before exiting 0. After the restore the
 * parent waits for each and gets exactly that, by PID, and has no other
 * child.
 */
#include <sys/prctl.h>
#include <sys/wait.h>

#include "lib.h"

static pid_t zombie(int how)
{
	pid_t pid = fork();
	if (pid < 0)
		fail("fork: %m");
	if (pid == 0) {
		if (how == 0) {
			setpgid(0, 0);
			_exit(42);
		}
		if (how == 1) {
			signal(SIGUSR1, SIG_DFL);
			kill(getpid(), SIGUSR1);
		}
		prctl(PR_SET_NAME, "zchild", 0, 0, 0);
		_exit(0);
	}
	siginfo_t info;
	if (waitid(P_PID, pid, &info, WEXITED | WNOWAIT) != 0)
		fail("waitid: %m");
	return pid;
}

static void expect(pid_t pid, int want, const char *what)
{
	int status;
	pid_t got = waitpid(pid, &status, WNOHANG);
	if (got != pid)
		fail("zombie %d (%s): waitpid gave %d (%m)", pid, what, got);
	if (status != want)
		fail("zombie %d (%s): status 0x%x, want 0x%x", pid, what, status, want);
}

static int comm_is(pid_t pid, const char *want)
{
	char path[64], buf[64] = "";
	snprintf(path, sizeof path, "/proc/%d/comm", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	if (!fgets(buf, sizeof buf, f))
		buf[0] = 0;
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
	return strcmp(buf, want) == 0;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	pid_t a = zombie(0), b = zombie(1), c = zombie(2);

	test_ready();
	test_waitsig();

	if (CORRUPT(1))
		waitpid(a, NULL, 0);
	if (CORRUPT(2))
		waitpid(c, NULL, 0);

	if (getpgid(a) != a)
		fail("zombie %d is in group %d, not its own", a, getpgid(a));
	if (!comm_is(c, "zchild"))
		fail("zombie %d lost its name", c);
	expect(a, 42 << 8, "exit 42");
	expect(b, SIGUSR1, "killed by SIGUSR1");
	expect(c, 0, "exit 0");
	if (waitpid(-1, NULL, WNOHANG) != -1 || errno != ECHILD)
		fail("a child it never had");
	pass();
}
