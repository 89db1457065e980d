/*
 * UNIX sockets beyond socketpairs survive:
 *   L: a stream listener bound to a path (in the test's directory), backlog
 *      5, the socket file's mode set to 0640;
 *   A: a stream listener on an abstract name;
 *   C and S: a client connected to L and the socket L accepted for it,
 *      with bytes waiting both ways;
 *   D: a datagram socket bound to a path, nothing waiting;
 *   N: a new stream socket, neither bound nor connected.
 * After the restore L and A still have their names and listen (a new
 * client of each is accepted and served), the socket file is a socket of
 * mode 0640, C and S find their bytes and talk on, D receives a datagram
 * sent to its path, and N connects to L.
 *
 * CORRUPT(k), after the SIGTERM: 1 L listens again at another path; 2 the
 * socket file's mode becomes 0600; 3 S's waiting bytes are read before the
 * check; 4 A is closed.
 */
#include "lib.h"

#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

/* A new client of `l` (named `name`) is accepted and served. */
static void serve_one(int l, const char *name, int abstract, int with)
{
	int c = test_unix_connect(name, abstract, SOCK_STREAM, with);
	struct pollfd p = { l, POLLIN, 0 };
	if (poll(&p, 1, 5000) != 1)
		fail("%s: no connection to accept", name);
	int s = accept(l, NULL, NULL);
	if (s < 0)
		fail("%s: accept: %m", name);
	if (write(c, "ping", 4) != 4)
		fail("%s: write: %m", name);
	test_read_exact(s, "ping", name);
	close(s);
	close(c);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	char cwd[200], lpath[300], dpath[300], abstract[64];
	if (!getcwd(cwd, sizeof(cwd)))
		fail("getcwd: %m");
	snprintf(lpath, sizeof(lpath), "%s/listener.sock", cwd);
	snprintf(dpath, sizeof(dpath), "%s/dgram.sock", cwd);
	snprintf(abstract, sizeof(abstract), "roam-zdtm-%d", getpid());
	unlink(lpath);
	unlink(dpath);

	int l = test_unix_listen(lpath, 0, SOCK_STREAM, 5);
	if (chmod(lpath, 0640))
		fail("chmod: %m");
	int a = test_unix_listen(abstract, 1, SOCK_STREAM, 3);
	int c = test_unix_connect(lpath, 0, SOCK_STREAM, -1);
	int s = accept(l, NULL, NULL);
	if (s < 0)
		fail("accept: %m");
	if (write(c, "to-server", 9) != 9 || write(s, "to-client", 9) != 9)
		fail("write: %m");
	int d = socket(AF_UNIX, SOCK_DGRAM, 0);
	struct sockaddr_un da;
	socklen_t dlen = test_unix_addr(&da, dpath, 0);
	if (bind(d, (struct sockaddr *)&da, dlen))
		fail("bind %s: %m", dpath);
	int n = socket(AF_UNIX, SOCK_STREAM, 0);

	test_ready();
	test_waitsig();

	if (CORRUPT(1)) {
		close(l);
		char other[320];
		snprintf(other, sizeof(other), "%s.other", lpath);
		l = test_unix_listen(other, 0, SOCK_STREAM, 5);
	}
	if (CORRUPT(2))
		chmod(lpath, 0600);
	if (CORRUPT(3)) {
		char buf[16];
		if (read(s, buf, 9) < 0)
			fail("read: %m");
	}
	if (CORRUPT(4))
		close(a);

	struct sockaddr_un got;
	socklen_t glen = sizeof(got);
	if (getsockname(l, (struct sockaddr *)&got, &glen) || strcmp(got.sun_path, lpath))
		fail("L is not bound to %s any more ('%s')", lpath, glen > offsetof(struct sockaddr_un, sun_path) ? got.sun_path : "");
	struct stat sb;
	if (stat(lpath, &sb) || !S_ISSOCK(sb.st_mode) || (sb.st_mode & 07777) != 0640)
		fail("%s: mode %o, want a socket of mode 0640", lpath, stat(lpath, &sb) ? 0 : sb.st_mode);
	test_read_exact(s, "to-server", "S's waiting bytes");
	test_read_exact(c, "to-client", "C's waiting bytes");
	if (write(c, "again", 5) != 5)
		fail("C: write: %m");
	test_read_exact(s, "again", "C -> S after the restore");
	serve_one(l, lpath, 0, -1);
	serve_one(a, abstract, 1, -1);
	serve_one(l, lpath, 0, n);
	int sender = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (sendto(sender, "dgram", 5, 0, (struct sockaddr *)&da, dlen) != 5)
		fail("send to %s: %m", dpath);
	test_read_exact(d, "dgram", "D");
	unlink(lpath);
	unlink(dpath);
	pass();
}
