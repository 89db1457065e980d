/*
 * A System V semaphore set survives with its id, key, mode, owner and
 * values, with the SEM_UNDO adjustments of the processes that hold them and
 * with a process still blocked in semop on it:
 *   the set: key 0x7bPPPPPP (PPPPPP: the root's pid), 4 semaphores, mode
 *     0640, SETALL 5 0 7 1;
 *   the root: one semop with SEM_UNDO takes 2 from sem 0 and adds 3 to sem
 *     2 (its semadj: +2 and -3); values now 3 0 10 1;
 *   child M: takes sem 3 (a mutex, 1 -> 0) with SEM_UNDO and holds it;
 *   child W: blocked in semop waiting to take 1 from sem 1 (which is 0);
 *     it retries on EINTR (the SIGTERM interrupts it) and must not return
 *     before the root posts sem 1.
 * Checked after the restore, in the root: semget(key) gives the same id;
 * IPC_STAT gives the key, mode, owner, creator and 4 semaphores; GETALL is
 * 3 0 10 0; sem 1 has one waiter (GETNCNT, within 5 s: W re-enters semop
 * after the EINTR) and the others none, and nobody waits for zero. Then the
 * undo adjustments: M exits without releasing sem 3, and once it is a
 * zombie sem 3 is 1 again (the kernel applied its semadj); the root's
 * unshare(CLONE_SYSVSEM) applies its own semadj: the values become
 * 5 0 7 1. Last the root posts sem 1: W must return then, and only then
 * (it checks a flag the root sets before the post), and the root sees W
 * took the unit (sem 1 back to 0). The root removes the set at exit
 * (atexit), pass or fail.
 *
 * CORRUPT(k), after the SIGTERM: 1 sem 2 gets +1 (no SEM_UNDO); 2 M sets
 * sem 3 to 0 with SETVAL before it exits (which clears its semadj); 3 the
 * root sets sem 0 to its own value with SETVAL (which clears the root's
 * semadj); 4 the root posts sem 1 before its checks (W is woken early);
 * 5 the set is removed and made again with the same key, mode and values
 * (another id, no adjustments, W's semop fails with EIDRM); 6 the set's mode
 * becomes 0600.
 */
#include "lib.h"

#include <sched.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/sem.h>
#include <sys/wait.h>

#define KEY_PREFIX 0x7b000000
#define NSEMS 4
#define WAIT_S 5

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
};

/* Shared between the root and its children (MAP_SHARED|MAP_ANONYMOUS). */
struct shared {
	volatile uint64_t m_go;		/* root -> M: exit now */
	volatile uint64_t posted;	/* root -> W: sem 1 is being posted */
	volatile uint64_t w_woken;	/* W -> root: its semop returned */
};

static key_t key;
static int semid = -1, semid2 = -1;
static struct shared *sh;

static void cleanup(void)
{
	if (getpid() != test_root_pid)
		return;
	int ids[] = { semid, semid2, semget(key, 0, 0) };
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		if (ids[i] >= 0)
			semctl(ids[i], 0, IPC_RMID);
}

static void op(int id, unsigned short num, short delta, short flags, const char *what)
{
	struct sembuf sb = { num, delta, flags };
	if (semop(id, &sb, 1))
		fail("%s: semop(sem %u, %+d): %m", what, num, delta);
}

static void getall(unsigned short *v)
{
	if (semctl(semid, 0, GETALL, (union semun){ .array = v }))
		fail("GETALL: %m");
}

static void check_values(const unsigned short *want, const char *when)
{
	unsigned short v[NSEMS];
	getall(v);
	if (memcmp(v, want, sizeof(v)))
		fail("%s: semaphore values %u %u %u %u, want %u %u %u %u", when, v[0], v[1], v[2],
		     v[3], want[0], want[1], want[2], want[3]);
}

static int getval(int cmd, int num)
{
	int v = semctl(semid, num, cmd);
	if (v < 0)
		fail("semctl(sem %d, %d): %m", num, cmd);
	return v;
}

/* M: holds sem 3 until the root says go, then exits without releasing. */
static void child_m(void)
{
	op(semid, 3, -1, SEM_UNDO, "M");
	test_child_ready();
	test_waitsig();
	if (test_wait_word(&sh->m_go, 1, 30))
		fail("M: no word from the root within 30 s of the SIGTERM");
	if (CORRUPT(2))
		semctl(semid, 3, SETVAL, (union semun){ .val = 0 });
	pass();
}

/* W: blocked taking 1 from sem 1 until the root posts it. */
static void child_w(void)
{
	struct sembuf sb = { 1, -1, 0 };
	int eintr = 0;

	test_child_ready();
	while (semop(semid, &sb, 1)) {
		if (errno != EINTR)
			fail("W: semop(sem 1, -1): %m");
		eintr++;
	}
	sh->w_woken = 1;
	if (!sh->posted)
		fail("W: semop(sem 1, -1) returned before the root posted sem 1 (after %d EINTR)",
		     eintr);
	test_msg("W: semop returned after the post (%d EINTR before)", eintr);
	pass();
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	atexit(cleanup);
	key = KEY_PREFIX | (getpid() & 0xffffff);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		fail("mmap: %m");

	semid = semget(key, NSEMS, IPC_CREAT | IPC_EXCL | 0640);
	if (semid < 0 && errno == EEXIST) {
		/* Left by a killed run that had the same pid. */
		semctl(semget(key, 0, 0), 0, IPC_RMID);
		semid = semget(key, NSEMS, IPC_CREAT | IPC_EXCL | 0640);
	}
	if (semid < 0)
		fail("semget(%#x): %m", (unsigned)key);
	unsigned short init[NSEMS] = { 5, 0, 7, 1 };
	if (semctl(semid, 0, SETALL, (union semun){ .array = init }))
		fail("SETALL: %m");
	struct sembuf mine[2] = { { 0, -2, SEM_UNDO }, { 2, 3, SEM_UNDO } };
	if (semop(semid, mine, 2))
		fail("semop with SEM_UNDO: %m");

	pid_t m = test_fork();
	if (m == 0)
		child_m();
	pid_t w = test_fork();
	if (w == 0)
		child_w();
	test_wait_children_ready();
	/* W really asleep in semop before READY. */
	double t0 = test_now();
	while (getval(GETNCNT, 1) != 1) {
		if (test_now() - t0 > WAIT_S)
			fail("W is not waiting on sem 1 within %d s", WAIT_S);
		usleep(1000);
	}

	struct semid_ds was;
	if (semctl(semid, 0, IPC_STAT, (union semun){ .buf = &was }))
		fail("IPC_STAT: %m");
	unsigned short held[NSEMS] = { 3, 0, 10, 0 };
	check_values(held, "before READY");
	test_msg("key %#x, semid %d, M %d holds sem 3, W %d waits on sem 1", (unsigned)key,
		 semid, m, w);
	test_ready();
	test_waitsig();

	if (CORRUPT(1))
		op(semid, 2, 1, 0, "CORRUPT(1)");
	if (CORRUPT(3))
		semctl(semid, 0, SETVAL, (union semun){ .val = 3 });
	if (CORRUPT(4))
		op(semid, 1, 1, 0, "CORRUPT(4)");
	if (CORRUPT(5)) {
		unsigned short v[NSEMS];
		getall(v);
		semctl(semid, 0, IPC_RMID);
		semid2 = semget(key, NSEMS, IPC_CREAT | IPC_EXCL | 0640);
		if (semid2 < 0 || semctl(semid2, 0, SETALL, (union semun){ .array = v }))
			fail("CORRUPT(5): re-creating the set: %m");
	}
	if (CORRUPT(6)) {
		struct semid_ds ds;
		semctl(semid, 0, IPC_STAT, (union semun){ .buf = &ds });
		ds.sem_perm.mode = 0600;
		semctl(semid, 0, IPC_SET, (union semun){ .buf = &ds });
	}

	/* The set: id, key, attributes, values. */
	int id = semget(key, 0, 0);
	if (id != semid)
		fail("semget(%#x) returns semid %d (%s), was %d", (unsigned)key, id,
		     id < 0 ? strerror(errno) : "another set", semid);
	struct semid_ds now;
	if (semctl(semid, 0, IPC_STAT, (union semun){ .buf = &now }))
		fail("IPC_STAT: %m");
	if (now.sem_perm.__key != was.sem_perm.__key)
		fail("key %#x, was %#x", (unsigned)now.sem_perm.__key, (unsigned)was.sem_perm.__key);
	if (now.sem_nsems != NSEMS)
		fail("sem_nsems %lu, want %d", (unsigned long)now.sem_nsems, NSEMS);
	if (now.sem_perm.mode != was.sem_perm.mode)
		fail("mode %#o, was %#o", now.sem_perm.mode, was.sem_perm.mode);
	if (now.sem_perm.uid != was.sem_perm.uid || now.sem_perm.gid != was.sem_perm.gid ||
	    now.sem_perm.cuid != was.sem_perm.cuid || now.sem_perm.cgid != was.sem_perm.cgid)
		fail("owner uid %d gid %d, creator uid %d gid %d; was %d %d, %d %d",
		     now.sem_perm.uid, now.sem_perm.gid, now.sem_perm.cuid, now.sem_perm.cgid,
		     was.sem_perm.uid, was.sem_perm.gid, was.sem_perm.cuid, was.sem_perm.cgid);
	check_values(held, "after the restore");

	/* Who waits: W on sem 1 (it re-enters semop after the SIGTERM's
	 * EINTR), nobody else. */
	t0 = test_now();
	for (;;) {
		if (sh->w_woken)
			fail("W's semop on sem 1 returned before the root posted sem 1");
		int n = getval(GETNCNT, 1);
		if (n == 1)
			break;
		if (test_now() - t0 > WAIT_S)
			fail("sem 1: semncnt %d %d s after the SIGTERM, want 1 (W is not waiting)",
			     n, WAIT_S);
		usleep(1000);
	}
	for (int i = 0; i < NSEMS; i++)
		if ((i != 1 && getval(GETNCNT, i)) || getval(GETZCNT, i))
			fail("sem %d: semncnt %d semzcnt %d, want 0 0", i, getval(GETNCNT, i),
			     getval(GETZCNT, i));

	/* M's adjustment: it exits holding sem 3; the kernel gives it back. */
	sh->m_go = 1;
	t0 = test_now();
	for (;;) {
		siginfo_t si = { 0 };
		if (waitid(P_PID, m, &si, WEXITED | WNOHANG | WNOWAIT))
			fail("waitid(M): %m");
		if (si.si_pid == m)
			break;
		if (test_now() - t0 > WAIT_S)
			fail("M did not exit within %d s", WAIT_S);
		usleep(1000);
	}
	int v3 = getval(GETVAL, 3);
	if (v3 != 1)
		fail("sem 3 is %d after M exited holding it, want 1 (M's SEM_UNDO adjustment +1 "
		     "was lost)", v3);

	/* The root's adjustments: unshare(CLONE_SYSVSEM) applies them. */
	if (unshare(CLONE_SYSVSEM))
		fail("unshare(CLONE_SYSVSEM): %m");
	int v0 = getval(GETVAL, 0), v2 = getval(GETVAL, 2);
	if (v0 != 5)
		fail("after unshare(CLONE_SYSVSEM) sem 0 is %d, want 5 (the root's SEM_UNDO "
		     "adjustment +2 was lost)", v0);
	if (v2 != 7)
		fail("after unshare(CLONE_SYSVSEM) sem 2 is %d, want 7 (the root's SEM_UNDO "
		     "adjustment -3 was lost)", v2);
	unsigned short undone[NSEMS] = { 5, 0, 7, 1 };
	check_values(undone, "after M's and the root's adjustments");

	/* W goes on only now. */
	sh->posted = 1;
	__sync_synchronize();
	op(semid, 1, 1, 0, "post sem 1");
	if (test_wait_word(&sh->w_woken, 1, WAIT_S))
		fail("W's semop on sem 1 did not return within %d s of the post", WAIT_S);
	int bad = test_reap_children();
	if (bad)
		fail("%d child process(es) failed", bad);
	int v1 = getval(GETVAL, 1);
	if (v1 != 0)
		fail("sem 1 is %d after W returned, want 0", v1);
	pass();
}
