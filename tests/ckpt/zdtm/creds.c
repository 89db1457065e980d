/*
 * Credentials: started as root, the program drops to uid 65534 (saved uid
 * 4243) and gid 65534 (saved gid 4242) with supplementary groups
 * {100, 4242, 65534}. After the restore getresuid/getresgid/getgroups
 * return the same, the filesystem ids follow, and all capability sets are
 * empty (setuid cleared them) except the untouched bounding set.
 */
#include "lib.h"

#include <grp.h>
#include <linux/capability.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

static const gid_t groups[] = { 100, 4242, 65534 };	/* sorted, as the kernel keeps them */
#define NR_GROUPS 3

static void caps(struct __user_cap_data_struct d[2])
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	if (syscall(SYS_capget, &h, d))
		fail("capget: %m");
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	if (geteuid() != 0)
		skip("needs root to change credentials");
	if (setgroups(NR_GROUPS, groups) || setresgid(65534, 65534, 4242) ||
	    setresuid(65534, 65534, 4243))
		fail("dropping privileges: %m");
	int bounding = 0;
	for (int c = 0; c <= CAP_LAST_CAP; c++)
		bounding += prctl(PR_CAPBSET_READ, c) == 1;

	test_ready();
	test_waitsig();

	if (CORRUPT(1))
		setresuid(65534, 65534, 65534);
	if (CORRUPT(2))
		setresgid(65534, 65534, 65534);

	uid_t r, e, s;
	gid_t gr, ge, gs;
	getresuid(&r, &e, &s);
	getresgid(&gr, &ge, &gs);
	if (r != 65534 || e != 65534 || s != 4243)
		fail("uids %d/%d/%d, expected 65534/65534/4243", r, e, s);
	if (gr != 65534 || ge != 65534 || gs != 4242)
		fail("gids %d/%d/%d, expected 65534/65534/4242", gr, ge, gs);
	if (setfsuid(-1) != 65534 || setfsgid(-1) != 65534)
		fail("fsuid %d fsgid %d, expected 65534", setfsuid(-1), setfsgid(-1));
	gid_t got[32];
	int n = getgroups(32, got);
	if (n != NR_GROUPS)
		fail("%d supplementary groups, expected %d", n, NR_GROUPS);
	for (int i = 0; i < NR_GROUPS; i++)
		if (got[i] != groups[i])
			fail("supplementary group %d is %d, expected %d", i, got[i], groups[i]);
	struct __user_cap_data_struct d[2];
	caps(d);
	for (int i = 0; i < 2; i++)
		if (d[i].effective || d[i].permitted || d[i].inheritable)
			fail("capabilities not empty: eff %#x prm %#x inh %#x", d[i].effective,
			     d[i].permitted, d[i].inheritable);
	int bounding_after = 0;
	for (int c = 0; c <= CAP_LAST_CAP; c++)
		bounding_after += prctl(PR_CAPBSET_READ, c) == 1;
	if (bounding_after != bounding)
		fail("bounding set has %d capabilities, had %d", bounding_after, bounding);
	if (getuid() != 65534 || access("/root", W_OK) == 0)
		fail("still has root's access");
	pass();
}
