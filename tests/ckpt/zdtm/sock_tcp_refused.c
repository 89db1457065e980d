/*
 * Refusal of a listener with a connection waiting to be accepted ("not
 * now"), met after a TCP connection on 127.0.0.1 (a client and the
 * server's accepted end, both in this process) that the dump had already
 * taken into repair mode and locked: `roam checkpoint` must fail with one
 * line naming the listener, and let the connection go as it was. After
 * SIGTERM the connection still carries bytes both ways, with what was in
 * flight at the checkpoint first, and the waiting connection is still
 * there to be accepted.
 *
 * CORRUPT(k): 1 the bytes in flight are read before the check (lost);
 * 2 the waiting connection is accepted and closed before the check.
 */
#include "lib.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

int main(int argc, char **argv)
{
	test_init(argc, argv);
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 4) || getsockname(l, (struct sockaddr *)&a, &len))
		fail("listen: %m");
	int client = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(client, (struct sockaddr *)&a, sizeof(a)))
		fail("connect: %m");
	int server = accept(l, NULL, NULL);
	if (server < 0)
		fail("accept: %m");
	if (write(client, "in flight", 9) != 9)
		fail("write: %m");
	int waiting = socket(AF_INET, SOCK_STREAM, 0);	/* never accepted before the checks */
	if (connect(waiting, (struct sockaddr *)&a, sizeof(a)))
		fail("connect: %m");
	/* The listener after the connection, in fd order: met last. */
	int high = fcntl(l, F_DUPFD, 40);
	if (high < 0)
		fail("F_DUPFD: %m");
	close(l);
	l = high;
	test_expect_refusal("fd 4[0-9]?: a listening socket with 1 connection\\(s\\) waiting to be accepted");
	test_ready();
	test_waitsig();
	if (CORRUPT(1)) {
		char buf[16];
		if (read(server, buf, 9) < 0)
			fail("read: %m");
	}
	if (CORRUPT(2))
		close(accept(l, NULL, NULL));
	test_read_exact(server, "in flight", "the bytes in flight");
	if (write(server, "back", 4) != 4)
		fail("write: %m");
	test_read_exact(client, "back", "server -> client");
	struct pollfd p = { l, POLLIN, 0 };
	if (poll(&p, 1, 1000) != 1)
		fail("the waiting connection is gone");
	int w = accept(l, NULL, NULL);
	if (w < 0)
		fail("accept the waiting connection: %m");
	pass();
}
