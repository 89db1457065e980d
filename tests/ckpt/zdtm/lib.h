/*
 * zdtm-style test library for roam's checkpoint/restore engine.
 *
 * A test is a tiny program: it builds some state, calls test_ready() (prints
 * "READY" on stdout, a log file opened by run_zdtm.sh), waits in
 * test_waitsig() until SIGTERM, then verifies the state and ends with pass()
 * or fail(). The runner checkpoints and restores the process tree between
 * READY and SIGTERM, so everything the program checks after test_waitsig()
 * must have survived the round trip.
 *
 * Process trees: test_fork() forks a child that belongs to the test; the
 * library's SIGTERM handler forwards SIGTERM to the calling process's
 * test_fork() children, and pass() in any process first reaps them and fails
 * if one of them failed. Only the root prints "PASS"; a failing process
 * prints "FAIL: (pid N) reason".
 *
 * Runner hooks: a test may print, before READY, lines the runner acts on:
 *   test_expect_refusal("re")    -> "ZDTM-EXPECT-REFUSAL: re": `roam
 *       checkpoint` must fail, with one line on stderr matching every such
 *       extended regular expression (grep -iE), e.g.
 *       test_expect_refusal("\\bfd %d\\b", fd);
 *   test_stop_before_ckpt()      -> "ZDTM-STOP-BEFORE-CKPT": the runner stops
 *       the root with SIGSTOP before the checkpoint and requires it to be
 *       stopped after the restore, then sends SIGCONT.
 *   test_remove_after_ckpt(path) -> "ZDTM-REMOVE-AFTER-CKPT: path": the
 *       runner removes the file once the tree is checkpointed (as a restore
 *       on another node would not find it), and at the end.
 *
 * Failure injection: built with -DZDTM_CORRUPT, CORRUPT(k) is true when the
 * environment variable ZDTM_CORRUPT equals k; tests use it after
 * test_waitsig() to damage one piece of their own state the way a broken
 * restore would, so that selfcheck.sh can prove every check can fail. In
 * normal builds CORRUPT(k) is the constant 0.
 */
#ifndef ZDTM_LIB_H
#define ZDTM_LIB_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

/* Set by the library's SIGTERM handler. */
extern volatile sig_atomic_t test_terminated;
/* The pid of the root process (the one that called test_init). */
extern pid_t test_root_pid;

/* REQUIRES: first call in main. Installs the SIGTERM handler (SA_RESTART,
 * forwards SIGTERM to test_fork() children) and makes stdout line-buffered. */
void test_init(int argc, char **argv);

/* Prints "READY" and flushes. Only the root may call it. */
void test_ready(void);

/* Waits (sigsuspend with the current mask minus SIGTERM) until SIGTERM. */
void test_waitsig(void);

/* Informational line "# ..." in the log. */
void test_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void pass(void) __attribute__((noreturn));
void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
/* Prints "SKIP: reason"; the runner reports the test as skipped. */
void skip(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* Runner hooks, see above. Call before test_ready(). */
void test_expect_refusal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void test_stop_before_ckpt(void);
void test_remove_after_ckpt(const char *path);

/* fork() for a process of the test tree. In the parent: returns the child's
 * pid and registers it for SIGTERM forwarding and reaping. In the child:
 * returns 0, the child has no registered children, and must eventually call
 * test_child_ready() once its state is built. */
pid_t test_fork(void);
/* In a child: tells the parent its state is built. */
void test_child_ready(void);
/* In a parent: waits until every registered child called test_child_ready(). */
void test_wait_children_ready(void);
/* Reaps every registered child; returns the number that did not exit 0. */
int test_reap_children(void);

/* Deterministic content: xorshift64* stream and FNV-1a checksum. */
void test_fill(void *buf, size_t len, uint64_t seed);
/* Returns the offset of the first byte that differs from test_fill(seed), or
 * -1 when the whole buffer matches. */
long test_check_fill(const void *buf, size_t len, uint64_t seed);
uint64_t test_fnv1a(const void *buf, size_t len);

/* What fd `fd` of this process names (/proc/self/fd/N), in out; "" if it
 * cannot be read. Returns out. */
const char *test_fd_link(int fd, char *out, size_t len);
/* The number after "KEY:" in /proc/self/fdinfo/FD, read in `base` (0 as
 * strtol), or LONG_MIN if that line or the file is missing. */
long test_fdinfo_value(int fd, const char *key, int base);

/* Monotonic clock in seconds. */
double test_now(void);

/* Waits up to `secs` seconds for *w == v (another process writing shared
 * memory), polling every millisecond. 0 once it holds, -1 on time out. */
int test_wait_word(volatile uint64_t *w, uint64_t v, double secs);

/* Reads the first line of /proc/self/status starting with `key` (e.g.
 * "SigPnd:") into out (without the key and leading blanks). Returns 0 if
 * found. */
int test_status_field(const char *key, char *out, size_t outlen);

/* Accesses addr: mode 'r' reads a byte, 'w' writes back the byte there, 'x'
 * calls addr (which must hold a `ret`). Returns 0 if the access worked, else
 * the signal it raised (SIGSEGV or SIGBUS), with its si_code in *code. */
int test_probe(volatile void *addr, int mode, int *code);

/* Sorts the lines of a NUL-terminated text in place (for fdinfo lines whose
 * order depends on kernel pointers). */
void test_sort_lines(char *text);

/* Reads exactly strlen(want) bytes from fd (5 s at most) and fails, naming
 * `what`, unless they are `want`. */
void test_read_exact(int fd, const char *want, const char *what);

/* UNIX sockets named `name`: a path, or with `abstract` an abstract name.
 * test_unix_addr fills *a and returns its length; test_unix_listen binds a
 * new socket of `type` and listens with `backlog`; test_unix_connect
 * connects `s`, or a new socket of `type` if s < 0, and returns it. They
 * fail the test on any error. */
socklen_t test_unix_addr(struct sockaddr_un *a, const char *name, int abstract);
int test_unix_listen(const char *name, int abstract, int type, int backlog);
int test_unix_connect(const char *name, int abstract, int type, int s);

#ifdef ZDTM_CORRUPT
extern int test_corrupt;
#define CORRUPT(k) (test_corrupt == (k))
#else
#define CORRUPT(k) 0
#endif

#endif
