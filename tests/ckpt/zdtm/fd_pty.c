/*
 * Pseudo-terminal pairs both ends of which the tree holds, as `script` and
 * `expect` make them. Pair A: a child leads a session whose controlling
 * terminal is A's slave, its own group in the foreground, and the slave
 * opened again by name at fd 100 (a description of its own, non-blocking);
 * the slave's mode changed (no echo, ^K kills a line) and its window
 * 33x101; the master in packet mode. The child wrote a line the master has
 * not read; the parent typed a line and half of another that the child has
 * not read. Pair B: a master whose slave was never opened, locked (no
 * unlockpt). Pair C: a master whose slave was opened and closed (it reads
 * EIO), then locked. Pair D: its slave (the parent's) wrote 10000 bytes the
 * master has not read, more than a tty's reader holds (4095; the rest waits
 * in the kernel's buffers). After the restore: every byte waiting in A
 * comes out once, in order, the line being typed finished by what is typed
 * next; the session, foreground group, fd 100, mode, window, packet mode
 * and the slave's permissions as before; B still locked and not hung up; C
 * locked and hung up; D's 10000 bytes read whole, in order.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>

#include "lib.h"

#define AGAIN 100 /* above the fds the test and lib.h open */

static int open_pair(int *slave, int unlock)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	if (m < 0 || grantpt(m) != 0)
		fail("posix_openpt: %m");
	if (!unlock)
		return m;
	if (unlockpt(m) != 0)
		fail("unlockpt: %m");
	*slave = open(ptsname(m), O_RDWR | O_NOCTTY);
	if (*slave < 0)
		fail("open %s: %m", ptsname(m));
	return m;
}

/* Reads what is there now (packet mode's status byte included). */
static ssize_t read_now(int fd, char *buf, size_t len)
{
	struct pollfd p = { fd, POLLIN, 0 };
	if (poll(&p, 1, 2000) <= 0 || !(p.revents & POLLIN))
		return 0;
	return read(fd, buf, len);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	int a_slave = -1, c_slave = -1;
	int a = open_pair(&a_slave, 1);
	int b = open_pair(NULL, 0);
	int c = open_pair(&c_slave, 1);
	close(c_slave);
	int lock = 1;
	if (ioctl(c, TIOCSPTLCK, &lock) != 0)
		fail("lock pair C: %m");
	int d_slave = -1;
	int d = open_pair(&d_slave, 1);
	static unsigned char d_out[10000];
	test_fill(d_out, sizeof d_out, 0xd);
	struct termios d_mode;
	tcgetattr(d_slave, &d_mode);
	d_mode.c_oflag &= ~OPOST; /* the bytes as written */
	tcsetattr(d_slave, TCSANOW, &d_mode);
	fcntl(d_slave, F_SETFL, O_NONBLOCK);
	if (write(d_slave, d_out, sizeof d_out) != (ssize_t)sizeof d_out)
		fail("write 10000 bytes into pair D's slave: %m");

	struct termios mode;
	if (tcgetattr(a_slave, &mode) != 0)
		fail("tcgetattr: %m");
	mode.c_lflag &= ~(ECHO | ECHOCTL);
	mode.c_cc[VKILL] = 0x0b;
	struct winsize ws = { .ws_row = 33, .ws_col = 101 };
	int on = 1;
	if (tcsetattr(a_slave, TCSANOW, &mode) != 0 || tcgetattr(a_slave, &mode) != 0 ||
	    ioctl(a, TIOCSWINSZ, &ws) != 0 || ioctl(a, TIOCPKT, &on) != 0)
		fail("set up pair A: %m");
	struct stat slave_before;
	fstat(a_slave, &slave_before);

	pid_t child = test_fork();
	if (child == 0) {
		close(a);
		if (setsid() < 0 || ioctl(a_slave, TIOCSCTTY, 0) != 0)
			fail("child: take pair A's slave as the controlling terminal: %m");
		int tty = open(ttyname(a_slave), O_RDWR | O_NONBLOCK);
		if (tty < 0 || dup2(tty, AGAIN) != AGAIN)
			fail("child: open the slave again: %m");
		close(tty);
		if (write(a_slave, "from the slave\n", 15) != 15)
			fail("child: write: %m");
		test_child_ready();
		test_waitsig();

		if (CORRUPT(3)) {
			signal(SIGHUP, SIG_IGN);
			ioctl(AGAIN, TIOCNOTTY);
		}
		if (CORRUPT(5))
			tcflush(a_slave, TCIFLUSH);
		if (tcgetsid(a_slave) != getpid())
			fail("child: pair A's slave is not its controlling terminal (tcgetsid: %d)", tcgetsid(a_slave));
		if (tcgetpgrp(AGAIN) != getpid())
			fail("child: fd 100: foreground group %d, want %d", tcgetpgrp(AGAIN), getpid());
		struct stat s_again, s;
		if (fstat(AGAIN, &s_again) != 0 || fstat(a_slave, &s) != 0 || s_again.st_rdev != s.st_rdev)
			fail("child: fd 100 is not pair A's slave");
		if (!(fcntl(AGAIN, F_GETFL) & O_NONBLOCK) || (fcntl(a_slave, F_GETFL) & O_NONBLOCK))
			fail("child: fd 100 and the slave share their flags now");
		if ((s.st_mode & 07777) != (slave_before.st_mode & 07777) || s.st_uid != slave_before.st_uid)
			fail("child: the slave's mode %o owner %d, was %o %d", s.st_mode & 07777, s.st_uid,
			     slave_before.st_mode & 07777, slave_before.st_uid);
		struct termios now;
		struct winsize w;
		if (tcgetattr(a_slave, &now) != 0 || now.c_lflag != mode.c_lflag ||
		    memcmp(now.c_cc, mode.c_cc, sizeof now.c_cc) != 0)
			fail("child: the slave's mode changed");
		if (ioctl(a_slave, TIOCGWINSZ, &w) != 0 || w.ws_row != 33 || w.ws_col != 101)
			fail("child: window %dx%d, want 33x101", w.ws_row, w.ws_col);
		/* The parent typed "typed line\npart" before, "ial\n" after. */
		char line[64] = "";
		ssize_t n = read(a_slave, line, sizeof line - 1);
		if (n != 11 || memcmp(line, "typed line\n", 11) != 0)
			fail("child: first line %zd bytes '%.*s', want 'typed line'", n, (int)(n > 0 ? n : 0), line);
		n = read(a_slave, line, sizeof line - 1);
		if (n != 8 || memcmp(line, "partial\n", 8) != 0)
			fail("child: second line %zd bytes '%.*s', want 'partial'", n, (int)(n > 0 ? n : 0), line);
		if (write(a_slave, "bye\n", 4) != 4)
			fail("child: write after: %m");
		pass();
	}
	close(a_slave);
	test_wait_children_ready();
	if (write(a, "typed line\npart", 15) != 15)
		fail("type into pair A: %m");
	usleep(100000); /* the typed bytes reach the slave's queue */

	test_ready();
	test_waitsig();

	if (CORRUPT(1)) {
		char junk[64];
		read_now(a, junk, sizeof junk);
	}
	if (CORRUPT(2)) {
		struct winsize other = { .ws_row = 24, .ws_col = 80 };
		ioctl(a, TIOCSWINSZ, &other);
	}
	if (CORRUPT(4)) {
		int off = 0;
		ioctl(b, TIOCSPTLCK, &off);
	}
	if (CORRUPT(6)) {
		int off = 0;
		ioctl(c, TIOCSPTLCK, &off);
		open(ptsname(c), O_RDWR | O_NOCTTY);
		ioctl(c, TIOCSPTLCK, &lock);
	}

	int pkt = 0;
	if (ioctl(a, TIOCGPKT, &pkt) != 0 || !pkt)
		fail("pair A's master is not in packet mode any more");
	char buf[64];
	ssize_t n = read_now(a, buf, sizeof buf);
	if (n != 17 || buf[0] != TIOCPKT_DATA || memcmp(buf + 1, "from the slave\r\n", 16) != 0)
		fail("pair A's master read %zd bytes, want the slave's line once", n);
	if (write(a, "ial\n", 4) != 4)
		fail("type into pair A after: %m");
	n = read_now(a, buf, sizeof buf);
	if (n != 6 || memcmp(buf + 1, "bye\r\n", 5) != 0)
		fail("pair A's master read %zd bytes after, want the child's 'bye'", n);

	if (ioctl(b, TIOCGPTLCK, &lock) != 0 || !lock)
		fail("pair B is not locked any more");
	if (ioctl(c, TIOCGPTLCK, &lock) != 0 || !lock)
		fail("pair C is not locked any more");
	struct pollfd p[2] = { { b, POLLIN, 0 }, { c, POLLIN, 0 } };
	poll(p, 2, 0);
	if (p[0].revents & POLLHUP)
		fail("pair B (slave never opened) is hung up");
	if (!(p[1].revents & POLLHUP) || read(c, buf, 1) != -1 || errno != EIO)
		fail("pair C (slave closed) is not hung up");
	if (CORRUPT(7))
		read_now(d, buf, sizeof buf);
	static unsigned char d_in[10000 + 1];
	size_t got = 0;
	for (ssize_t r; got <= sizeof d_out && (r = read_now(d, (char *)d_in + got, sizeof d_in - got)) > 0;)
		got += r;
	if (got != sizeof d_out || test_check_fill(d_in, got, 0xd) >= 0)
		fail("pair D's master read %zu bytes, want the 10000 its slave wrote", got);
	pass();
}
