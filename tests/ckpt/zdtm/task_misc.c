/*
 * Per-task attributes: comm (PR_SET_NAME), dumpable 0, no_new_privs,
 * personality (ADDR_NO_RANDOMIZE | UNAME26, both harmless here, UNAME26
 * visible through uname()), the clear_child_tid address (set_tid_address,
 * read back with PR_GET_TID_ADDRESS), the robust futex list head, umask,
 * cwd (a directory the program creates inside the runner's directory), the
 * executable (/proc/self/exe) and RLIMIT_NOFILE, RLIMIT_STACK and
 * RLIMIT_CORE lowered to odd values. All must be unchanged after the restore.
 */
#include "lib.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>

#ifndef PR_GET_TID_ADDRESS
#define PR_GET_TID_ADDRESS 40
#endif

#define NAME "zdtm:misc-42"
#define PERSONA (PER_LINUX | ADDR_NO_RANDOMIZE | UNAME26)

static int tid_word;
static const struct { int res; struct rlimit lim; } rlims[] = {
	{ RLIMIT_NOFILE, { 777, 1031 } },
	{ RLIMIT_STACK, { 7 * 1024 * 1024 + 12288, 61 * 1024 * 1024 } },
	{ RLIMIT_CORE, { 12345, 543210 } },
};
#define NR_RLIMS (sizeof(rlims) / sizeof(rlims[0]))

static void *robust_head(void)
{
	void *head;
	size_t len;
	if (syscall(SYS_get_robust_list, 0, &head, &len))
		fail("get_robust_list: %m");
	return head;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	char cwd_before[PATH_MAX], exe_before[PATH_MAX];

	if (mkdir("task_misc.cwd", 0755) && errno != EEXIST)
		fail("mkdir: %m");
	if (chdir("task_misc.cwd") || !getcwd(cwd_before, sizeof(cwd_before)))
		fail("chdir: %m");
	ssize_t n = readlink("/proc/self/exe", exe_before, sizeof(exe_before) - 1);
	if (n < 0)
		fail("readlink /proc/self/exe: %m");
	exe_before[n] = 0;
	if (prctl(PR_SET_NAME, NAME) || prctl(PR_SET_DUMPABLE, 0) ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		fail("prctl: %m");
	if (personality(PERSONA) < 0)
		fail("personality: %m");
	syscall(SYS_set_tid_address, &tid_word);
	void *robust = robust_head();
	umask(0027);
	for (unsigned i = 0; i < NR_RLIMS; i++)
		if (setrlimit(rlims[i].res, &rlims[i].lim))
			fail("setrlimit(%d): %m", rlims[i].res);
	struct utsname u;
	uname(&u);
	test_msg("uname -r under UNAME26: %s, robust list head %p", u.release, robust);

	test_ready();
	test_waitsig();

	if (CORRUPT(1))
		prctl(PR_SET_NAME, "zdtm:other");
	if (CORRUPT(2))
		umask(0022);
	if (CORRUPT(3)) {
		struct rlimit r = rlims[1].lim;
		r.rlim_cur -= 4096;
		setrlimit(RLIMIT_STACK, &r);
	}
	if (CORRUPT(4))
		personality(PER_LINUX);
	if (CORRUPT(5))
		syscall(SYS_set_tid_address, NULL);
	if (CORRUPT(6))
		chdir("..");
	if (CORRUPT(7)) {
		static struct robust_list_head other;
		syscall(SYS_set_robust_list, &other, sizeof(other));
	}

	char name[17] = "";
	prctl(PR_GET_NAME, name);
	if (strcmp(name, NAME))
		fail("comm is \"%s\", expected \"%s\"", name, NAME);
	if (prctl(PR_GET_DUMPABLE) != 0)
		fail("dumpable is %d, expected 0", prctl(PR_GET_DUMPABLE));
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		fail("no_new_privs is not set");
	int pers = personality(0xffffffff);
	if (pers != PERSONA)
		fail("personality is %#x, expected %#x", pers, PERSONA);
	struct utsname u2;
	uname(&u2);
	if (strcmp(u.release, u2.release))
		fail("uname release \"%s\", was \"%s\"", u2.release, u.release);
	int *tid_addr = NULL;
	if (prctl(PR_GET_TID_ADDRESS, &tid_addr))
		fail("PR_GET_TID_ADDRESS: %m");
	if (tid_addr != &tid_word)
		fail("clear_child_tid is %p, expected %p", (void *)tid_addr, (void *)&tid_word);
	if (robust_head() != robust)
		fail("robust list head is %p, expected %p", robust_head(), robust);
	mode_t m = umask(0);
	if (m != 0027)
		fail("umask is %03o, expected 027", m);
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)) || strcmp(cwd, cwd_before))
		fail("cwd is \"%s\", expected \"%s\"", cwd, cwd_before);
	char exe[PATH_MAX];
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n < 0 ? 0 : n] = 0;
	if (strcmp(exe, exe_before))
		fail("/proc/self/exe is \"%s\", expected \"%s\"", exe, exe_before);
	for (unsigned i = 0; i < NR_RLIMS; i++) {
		struct rlimit r;
		getrlimit(rlims[i].res, &r);
		if (r.rlim_cur != rlims[i].lim.rlim_cur || r.rlim_max != rlims[i].lim.rlim_max)
			fail("rlimit %d is %llu/%llu, expected %llu/%llu", rlims[i].res,
			     (unsigned long long)r.rlim_cur, (unsigned long long)r.rlim_max,
			     (unsigned long long)rlims[i].lim.rlim_cur,
			     (unsigned long long)rlims[i].lim.rlim_max);
	}
	pass();
}
