/*
 * A session on a terminal of its own: the root leads a session whose
 * controlling terminal is the pty at its fds 0-2 (run_zdtm.sh gives one to
 * every tty_* program), has made its child's process group the foreground,
 * set the terminal's mode, and opened the terminal again by name at fd 10
 * (a description of its own, non-blocking). After the restore, on the same
 * terminal handed over by `roam restore`: still the session's controlling
 * terminal, the child's group still in the foreground, the mode kept, and
 * fd 10 the same terminal with its own flags.
 */
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>

#include "lib.h"

int main(int argc, char **argv)
{
	test_init(argc, argv);
	if (!isatty(0) || getsid(0) != getpid())
		skip("needs a terminal of its own (run_zdtm.sh gives one to tty_* programs)");

	struct termios mode;
	if (tcgetattr(0, &mode) != 0)
		fail("tcgetattr: %m");
	mode.c_lflag &= ~ECHOCTL;
	mode.c_cc[VKILL] = 0x0b;
	if (tcsetattr(0, TCSANOW, &mode) != 0 || tcgetattr(0, &mode) != 0)
		fail("tcsetattr: %m");

	int again = open(ttyname(0), O_RDWR | O_NOCTTY | O_NONBLOCK);
	if (again < 0 || dup2(again, 10) != 10)
		fail("reopen the terminal: %m");
	close(again);

	pid_t child = test_fork();
	if (child == 0) {
		setpgid(0, 0);
		test_waitsig();
		pass();
	}
	setpgid(child, child);
	if (tcsetpgrp(0, child) != 0)
		fail("tcsetpgrp: %m");

	test_ready();
	test_waitsig();

	signal(SIGTTOU, SIG_IGN); /* the damage below acts from the background */
	if (CORRUPT(1))
		tcsetpgrp(0, getpgrp());
	if (CORRUPT(2))
		dup2(open("/dev/null", O_RDWR), 10);
	if (CORRUPT(3)) {
		struct termios other = mode;
		other.c_cc[VKILL] = 0x15;
		tcsetattr(0, TCSANOW, &other);
	}
	if (CORRUPT(4))
		fcntl(10, F_SETFL, O_RDWR);

	for (int fd = 0; fd <= 2; fd++)
		if (!isatty(fd))
			fail("fd %d is not a terminal", fd);
	if (getsid(0) != getpid())
		fail("session %d, want its own (%d)", getsid(0), getpid());
	if (tcgetsid(0) != getpid())
		fail("the terminal is not the session's controlling terminal (tcgetsid: %d, %m)", tcgetsid(0));
	if (tcgetpgrp(0) != child)
		fail("foreground group %d, want the child's %d", tcgetpgrp(0), child);
	struct termios now;
	if (tcgetattr(0, &now) != 0 || now.c_lflag != mode.c_lflag || now.c_iflag != mode.c_iflag ||
	    now.c_oflag != mode.c_oflag || memcmp(now.c_cc, mode.c_cc, sizeof now.c_cc) != 0)
		fail("the terminal's mode changed");
	struct stat a, b;
	if (fstat(10, &a) != 0 || fstat(0, &b) != 0 || !S_ISCHR(a.st_mode) || a.st_rdev != b.st_rdev)
		fail("fd 10 is not the terminal any more");
	int fl = fcntl(10, F_GETFL);
	if ((fl & O_ACCMODE) != O_RDWR || !(fl & O_NONBLOCK) || (fcntl(0, F_GETFL) & O_NONBLOCK))
		fail("fd 10 lost its own flags (0x%x)", fl);
	pass();
}
