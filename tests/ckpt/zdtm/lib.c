/* zdtm-style test library: see lib.h for the protocol. */
#include "lib.h"

#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <time.h>

#define MAX_CHILDREN 16

volatile sig_atomic_t test_terminated;
pid_t test_root_pid;
#ifdef ZDTM_CORRUPT
int test_corrupt;
#endif

/* This process's test_fork() children; read by the SIGTERM handler. */
static volatile pid_t children[MAX_CHILDREN];
static int children_ready_fd[MAX_CHILDREN];
static volatile int nr_children;
/* In a child: the pipe end that test_child_ready() writes to. */
static int ready_wfd = -1;

static void sigterm_handler(int sig)
{
	int saved = errno;
	test_terminated = 1;
	for (int i = 0; i < nr_children; i++)
		kill(children[i], SIGTERM);
	errno = saved;
}

void test_init(int argc, char **argv)
{
	struct sigaction sa;

	test_root_pid = getpid();
	setvbuf(stdout, NULL, _IOLBF, 0);
#ifdef ZDTM_CORRUPT
	const char *c = getenv("ZDTM_CORRUPT");
	test_corrupt = c ? atoi(c) : 0;
#endif
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sigterm_handler;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL))
		fail("sigaction(SIGTERM): %m");
}

void test_ready(void)
{
	if (getpid() != test_root_pid)
		fail("test_ready() called outside the root");
	printf("READY\n");
	fflush(stdout);
}

void test_waitsig(void)
{
	sigset_t m;

	sigprocmask(SIG_SETMASK, NULL, &m);
	sigdelset(&m, SIGTERM);
	while (!test_terminated)
		sigsuspend(&m);
}

static void vline(const char *prefix, const char *fmt, va_list ap)
{
	char buf[1024];
	int n = 0;

	if (getpid() != test_root_pid)
		n = snprintf(buf, sizeof(buf), "%s(pid %d) ", prefix, getpid());
	else
		n = snprintf(buf, sizeof(buf), "%s", prefix);
	vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	printf("%s\n", buf);
	fflush(stdout);
}

void test_msg(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	vline("# ", fmt, ap);
	va_end(ap);
	errno = saved;
}

void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vline("FAIL: ", fmt, ap);
	va_end(ap);
	for (int i = 0; i < nr_children; i++)
		kill(children[i], SIGKILL);
	exit(1);
}

void skip(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vline("SKIP: ", fmt, ap);
	va_end(ap);
	for (int i = 0; i < nr_children; i++)
		kill(children[i], SIGKILL);
	exit(0);
}

void pass(void)
{
	int bad = test_reap_children();

	if (bad)
		fail("%d child process(es) failed", bad);
	if (getpid() == test_root_pid) {
		printf("PASS\n");
		fflush(stdout);
	}
	exit(0);
}

void test_expect_refusal(const char *fmt, ...)
{
	va_list ap;
	char buf[256];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	printf("ZDTM-EXPECT-REFUSAL: %s\n", buf);
	fflush(stdout);
}

void test_stop_before_ckpt(void)
{
	printf("ZDTM-STOP-BEFORE-CKPT\n");
	fflush(stdout);
}

void test_remove_after_ckpt(const char *path)
{
	printf("ZDTM-REMOVE-AFTER-CKPT: %s\n", path);
	fflush(stdout);
}

pid_t test_fork(void)
{
	int p[2];
	pid_t pid;

	if (nr_children == MAX_CHILDREN)
		fail("too many children");
	if (pipe2(p, O_CLOEXEC))
		fail("pipe2: %m");
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		fail("fork: %m");
	if (pid == 0) {
		close(p[0]);
		for (int i = 0; i < nr_children; i++)
			if (children_ready_fd[i] >= 0)
				close(children_ready_fd[i]);
		nr_children = 0;
		if (ready_wfd >= 0)
			close(ready_wfd);
		ready_wfd = p[1];
		return 0;
	}
	close(p[1]);
	children_ready_fd[nr_children] = p[0];
	children[nr_children] = pid;
	nr_children++;
	return pid;
}

void test_child_ready(void)
{
	char c = 'R';

	if (ready_wfd < 0)
		fail("test_child_ready() outside a test_fork() child");
	if (write(ready_wfd, &c, 1) != 1)
		fail("write ready: %m");
	close(ready_wfd);
	ready_wfd = -1;
}

void test_wait_children_ready(void)
{
	for (int i = 0; i < nr_children; i++) {
		char c;
		ssize_t n;

		if (children_ready_fd[i] < 0)
			continue;
		do
			n = read(children_ready_fd[i], &c, 1);
		while (n < 0 && errno == EINTR);
		if (n != 1)
			fail("child %d died before it was ready", children[i]);
		/* Its end closed too (it writes, then closes): a capture taken
		 * between the two would show an fd that is gone after the restore.
		 * Bounded: a child's own fork() may hold a copy of that end. */
		struct pollfd pfd = { .fd = children_ready_fd[i], .events = POLLIN };
		if (poll(&pfd, 1, 2000) == 1) {
			ssize_t eof = read(children_ready_fd[i], &c, 1);
			(void)eof;
		}
		close(children_ready_fd[i]);
		children_ready_fd[i] = -1;
	}
}

int test_reap_children(void)
{
	int bad = 0;

	for (int i = 0; i < nr_children; i++) {
		int st;
		pid_t r;

		do
			r = waitpid(children[i], &st, 0);
		while (r < 0 && errno == EINTR);
		if (r < 0) {
			printf("FAIL: waitpid(%d): %m\n", children[i]);
			bad++;
		} else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			printf("# child %d ended with %s %d\n", children[i],
			       WIFEXITED(st) ? "exit status" : "signal",
			       WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
			bad++;
		}
	}
	fflush(stdout);
	nr_children = 0;
	return bad;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

void test_fill(void *buf, size_t len, uint64_t seed)
{
	uint64_t s = seed | 1;
	unsigned char *p = buf;

	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = xorshift(&s);
		size_t n = len - i < 8 ? len - i : 8;
		memcpy(p + i, &v, n);
	}
}

long test_check_fill(const void *buf, size_t len, uint64_t seed)
{
	uint64_t s = seed | 1;
	const unsigned char *p = buf;

	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = xorshift(&s);
		size_t n = len - i < 8 ? len - i : 8;
		if (memcmp(p + i, &v, n))
			for (size_t j = 0; j < n; j++)
				if (p[i + j] != ((unsigned char *)&v)[j])
					return (long)(i + j);
	}
	return -1;
}

uint64_t test_fnv1a(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

double test_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

const char *test_fd_link(int fd, char *out, size_t len)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, out, len - 1);
	out[n < 0 ? 0 : n] = 0;
	return out;
}

long test_fdinfo_value(int fd, const char *key, int base)
{
	char path[64], text[4096], want[64];

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	int f = open(path, O_RDONLY);
	ssize_t n = f < 0 ? -1 : read(f, text, sizeof(text) - 1);
	if (f >= 0)
		close(f);
	if (n <= 0)
		return LONG_MIN;
	text[n] = 0;
	snprintf(want, sizeof(want), "\n%s:", key);
	const char *at = NULL;
	if (strncmp(text, want + 1, strlen(want + 1)) == 0) /* the first line */
		at = text + strlen(want + 1);
	else if ((at = strstr(text, want)))
		at += strlen(want);
	return at ? strtol(at, NULL, base) : LONG_MIN;
}

int test_wait_word(volatile uint64_t *w, uint64_t v, double secs)
{
	double end = test_now() + secs;

	while (*w != v) {
		if (test_now() > end)
			return -1;
		usleep(1000);
	}
	return 0;
}

int test_status_field(const char *key, char *out, size_t outlen)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[512];
	size_t kl = strlen(key);
	int ret = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, kl))
			continue;
		char *v = line + kl;
		while (*v == ' ' || *v == '\t')
			v++;
		v[strcspn(v, "\n")] = 0;
		snprintf(out, outlen, "%s", v);
		ret = 0;
		break;
	}
	fclose(f);
	return ret;
}

static sigjmp_buf probe_jb;
static volatile int probe_code;

static void probe_handler(int sig, siginfo_t *si, void *uc)
{
	probe_code = si->si_code;
	siglongjmp(probe_jb, sig);
}

int test_probe(volatile void *addr, int mode, int *code)
{
	struct sigaction sa, old_segv, old_bus;
	int sig;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = probe_handler;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old_segv);
	sigaction(SIGBUS, &sa, &old_bus);
	sig = sigsetjmp(probe_jb, 1);
	if (sig == 0) {
		volatile unsigned char *p = addr;
		if (mode == 'r')
			(void)*p;
		else if (mode == 'w')
			*p = *p;
		else
			((void (*)(void))addr)();
	}
	sigaction(SIGSEGV, &old_segv, NULL);
	sigaction(SIGBUS, &old_bus, NULL);
	if (code)
		*code = sig ? probe_code : 0;
	return sig;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void test_sort_lines(char *text)
{
	size_t len = strlen(text), n = 0;
	char *copy = strdup(text), **lines = calloc(len + 1, sizeof(char *));

	if (!copy || !lines)
		fail("out of memory");
	for (char *save, *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		lines[n++] = l;
	qsort(lines, n, sizeof(char *), cmp_str);
	text[0] = 0;
	for (size_t i = 0; i < n; i++) {
		strcat(text, lines[i]);
		strcat(text, "\n");
	}
	free(lines);
	free(copy);
}

socklen_t test_unix_addr(struct sockaddr_un *a, const char *name, int abstract)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (abstract) {
		memcpy(a->sun_path + 1, name, strlen(name));
		return offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name);
	}
	strcpy(a->sun_path, name);
	return offsetof(struct sockaddr_un, sun_path) + strlen(name) + 1;
}

int test_unix_listen(const char *name, int abstract, int type, int backlog)
{
	struct sockaddr_un a;
	socklen_t len = test_unix_addr(&a, name, abstract);
	int s = socket(AF_UNIX, type, 0);
	if (bind(s, (struct sockaddr *)&a, len) || listen(s, backlog))
		fail("listen on %s: %m", name);
	return s;
}

int test_unix_connect(const char *name, int abstract, int type, int s)
{
	struct sockaddr_un a;
	socklen_t len = test_unix_addr(&a, name, abstract);
	if (s < 0)
		s = socket(AF_UNIX, type, 0);
	if (connect(s, (struct sockaddr *)&a, len))
		fail("connect to %s: %m", name);
	return s;
}

void test_read_exact(int fd, const char *want, const char *what)
{
	char buf[64] = { 0 };
	size_t n = strlen(want), got = 0;
	if (n >= sizeof(buf))
		fail("%s: test_read_exact wants at most %zu bytes", what, sizeof(buf) - 1);
	while (got < n) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 5000) != 1)
			fail("%s: only %zu of %zu bytes within 5 s", what, got, n);
		ssize_t r = read(fd, buf + got, n - got);
		if (r <= 0)
			fail("%s: read: %s", what, r ? strerror(errno) : "EOF");
		got += r;
	}
	if (memcmp(buf, want, n))
		fail("%s: got '%s', want '%s'", what, buf, want);
}
