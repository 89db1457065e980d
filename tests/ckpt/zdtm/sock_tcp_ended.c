/*
 * TCP sockets whose connection ended while the process still holds them
 * come back as ended ones, and the image restores: before 2026-12-07 the
 * restore bound each to its old port again, which its listener (or
 * another process) holds, and failed ("bind to ... again: Address already
 * in use"): the process, killed by the checkpoint, was lost.
 *   R listens on 127.0.0.1 at a port of the kernel's choice (no
 *   SO_REUSEADDR) and holds: an accepted connection its client reset
 *   (SO_LINGER 0); an accepted connection closed both ways (its client
 *   closed, it shut down its side); a client whose connect() was refused
 *   (which the kernel makes a new socket again); a socket bound to a port
 *   and never connected.
 * After: reads of the two ended ones give 0 (or the reset's ECONNRESET),
 * at once, and writes fail with EPIPE; the refused client connects to the
 * listener; the bound socket still holds its port (getsockname) and can
 * listen on it; the listener still accepts.
 *
 * CORRUPT(k), after the SIGTERM: 1 the reset connection's fd is replaced
 * by a new socket (what the restore would have made of it without being
 * told it ended: reads give ENOTCONN); 2 the bound socket's fd is replaced
 * by one bound to another port.
 */
#include "lib.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

static struct sockaddr_in at;

static int dial(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&at, sizeof(at)))
		fail("connect: %m");
	return s;
}

/* A socket bound to 127.0.0.1 at a port of the kernel's choice. */
static int bound(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (bind(s, (struct sockaddr *)&a, sizeof(a)))
		fail("bind: %m");
	return s;
}

static int port_of(int s)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	if (getsockname(s, (struct sockaddr *)&a, &len))
		return -1;
	return ntohs(a.sin_port);
}

static void check_ended(int s, const char *what)
{
	struct pollfd p = { s, POLLIN, 0 };
	if (poll(&p, 1, 0) != 1)
		fail("%s: a read would wait", what);
	char c;
	ssize_t n = read(s, &c, 1);
	if (n != 0 && !(n < 0 && errno == ECONNRESET))
		fail("%s: read gave %zd (%m), not 0", what, n);
	if (write(s, "x", 1) >= 0 || errno != EPIPE)
		fail("%s: write did not fail with EPIPE (%m)", what);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	int l = bound();
	socklen_t alen = sizeof(at);
	if (listen(l, 8) || getsockname(l, (struct sockaddr *)&at, &alen))
		fail("listen: %m");

	int c1 = dial(), reset = accept(l, NULL, NULL);
	struct linger abort_close = { 1, 0 };
	setsockopt(c1, SOL_SOCKET, SO_LINGER, &abort_close, sizeof(abort_close));
	close(c1);

	int c2 = dial(), closed = accept(l, NULL, NULL);
	close(c2);
	usleep(50000);
	if (shutdown(closed, SHUT_WR))
		fail("shutdown: %m");

	int refused = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in nowhere = at;
	int spare = bound();	/* a port nobody listens on */
	nowhere.sin_port = htons(port_of(spare));
	close(spare);
	if (connect(refused, (struct sockaddr *)&nowhere, sizeof(nowhere)) == 0 || errno != ECONNREFUSED)
		fail("connect to a closed port: %m");

	int b = bound();
	const int b_port = port_of(b);
	usleep(50000);
	test_msg("listener on %d, bound socket on %d", ntohs(at.sin_port), b_port);
	test_ready();
	test_waitsig();

	if (CORRUPT(1))
		dup2(socket(AF_INET, SOCK_STREAM, 0), reset);
	if (CORRUPT(2))
		dup2(bound(), b);
	check_ended(reset, "the reset connection");
	check_ended(closed, "the connection closed both ways");
	if (connect(refused, (struct sockaddr *)&at, sizeof(at)))
		fail("the refused client cannot connect again: %m");
	int r = accept(l, NULL, NULL);
	if (r < 0)
		fail("accept the refused client's second try: %m");
	close(r);
	if (port_of(b) != b_port)
		fail("the bound socket is on port %d, not %d", port_of(b), b_port);
	if (listen(b, 1))
		fail("listen on the bound socket: %m");
	int c = dial(), a = accept(l, NULL, NULL);
	if (a < 0)
		fail("the listener does not accept: %m");
	close(c);
	close(a);
	pass();
}
