/*
 * Connections waiting to be accepted by a UNIX listener survive, in the
 * order of its queue (a multiprocessing.Manager's workers connect and wait
 * so for the manager's thread to accept them):
 *   L: a stream listener bound to a path, with three connections waiting:
 *      C1 and C2 (the root's), then C3 (a child's); none wrote yet;
 *   A: a stream listener on an abstract name, with one waiting (CA);
 *   Q: a seqpacket listener on an abstract name, with one waiting (CQ).
 * After the restore L gives exactly three connections, to C1, C2 and C3 in
 * that order (each gets the bytes written to the socket accepted for it,
 * the child answers through its own), A gives CA's and Q gives CQ's, whose
 * records keep their bounds.
 *
 * CORRUPT(k), after the SIGTERM: 1 one of L's connections is accepted and
 * closed before the check; 2 A is closed and listens again at its name;
 * 3 C1 and C2 swap fds.
 */
#include "lib.h"

#include <poll.h>

/* The next connection waiting on l (5 s at most). */
static int next_waiting(int l, const char *what)
{
	struct pollfd p = { l, POLLIN, 0 };
	if (poll(&p, 1, 5000) != 1)
		fail("%s: no connection waiting to be accepted", what);
	int s = accept(l, NULL, NULL);
	if (s < 0)
		fail("%s: accept: %m", what);
	return s;
}

static void send_all(int fd, const char *text, const char *what)
{
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		fail("%s: write: %m", what);
}

/* Nothing to read on fd yet. */
static void nothing_waiting(int fd, const char *what)
{
	struct pollfd p = { fd, POLLIN, 0 };
	if (poll(&p, 1, 0) != 0)
		fail("%s: something to read before anything was written (events %#x)", what, p.revents);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	char cwd[200], lpath[300], aname[64], qname[64];
	if (!getcwd(cwd, sizeof(cwd)))
		fail("getcwd: %m");
	snprintf(lpath, sizeof(lpath), "%s/pending.sock", cwd);
	snprintf(aname, sizeof(aname), "roam-zdtm-pending-a-%d", getpid());
	snprintf(qname, sizeof(qname), "roam-zdtm-pending-q-%d", getpid());
	unlink(lpath);

	int l = test_unix_listen(lpath, 0, SOCK_STREAM, 8);
	int a = test_unix_listen(aname, 1, SOCK_STREAM, 8);
	int q = test_unix_listen(qname, 1, SOCK_SEQPACKET, 8);
	int c1 = test_unix_connect(lpath, 0, SOCK_STREAM, -1);
	int c2 = test_unix_connect(lpath, 0, SOCK_STREAM, -1);
	if (test_fork() == 0) { /* the third client of L */
		close(l);
		close(a);
		close(q);
		close(c1);
		close(c2);
		int c3 = test_unix_connect(lpath, 0, SOCK_STREAM, -1);
		test_child_ready();
		test_waitsig();
		test_read_exact(c3, "third", "C3: what L's third connection was sent");
		send_all(c3, "child-ok", "C3");
		pass();
	}
	int ca = test_unix_connect(aname, 1, SOCK_STREAM, -1);
	int cq = test_unix_connect(qname, 1, SOCK_SEQPACKET, -1);
	test_wait_children_ready();

	test_ready();
	test_waitsig();

	if (CORRUPT(1))
		close(next_waiting(l, "L (CORRUPT)"));
	if (CORRUPT(2)) {
		close(a);
		a = test_unix_listen(aname, 1, SOCK_STREAM, 8);
	}
	if (CORRUPT(3)) {
		int t = dup(c1);
		dup2(c2, c1);
		dup2(t, c2);
		close(t);
	}

	nothing_waiting(c1, "C1");
	nothing_waiting(c2, "C2");
	int s1 = next_waiting(l, "L, first");
	int s2 = next_waiting(l, "L, second");
	int s3 = next_waiting(l, "L, third");
	struct pollfd p = { l, POLLIN, 0 };
	if (poll(&p, 1, 0) != 0)
		fail("L: a fourth connection waits");
	send_all(s1, "first", "L's first");
	send_all(s2, "second", "L's second");
	send_all(s3, "third", "L's third");
	test_read_exact(c1, "first", "C1: what L's first connection was sent");
	test_read_exact(c2, "second", "C2: what L's second connection was sent");
	test_read_exact(s3, "child-ok", "L's third connection: the child's answer");
	send_all(c1, "back", "C1");
	test_read_exact(s1, "back", "C1 -> L's first");

	int sa = next_waiting(a, "A");
	send_all(ca, "to-a", "CA");
	test_read_exact(sa, "to-a", "CA -> A's connection");

	int sq = next_waiting(q, "Q");
	if (send(cq, "rec-one", 7, 0) != 7 || send(cq, "rec-2", 5, 0) != 5)
		fail("CQ: send: %m");
	char buf[32];
	ssize_t n1 = recv(sq, buf, sizeof(buf), 0);
	ssize_t n2 = recv(sq, buf, sizeof(buf), 0);
	if (n1 != 7 || n2 != 5)
		fail("Q's connection: records of %zd and %zd bytes, want 7 and 5", n1, n2);
	unlink(lpath);
	pass();
}
