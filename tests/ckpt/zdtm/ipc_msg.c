/*
 * System V message queues survive with their ids, keys, modes, owners,
 * limits and queued messages (types, sizes, bytes and order), and a process
 * blocked in msgrcv stays blocked:
 *   Q: key 0x7cPPPPPP (PPPPPP: the root's pid), mode 0600, msg_qbytes
 *     lowered with IPC_SET to 12000 (raising it above msgmnb, 16384 by
 *     default, needs CAP_SYS_RESOURCE), holding 5 messages: type 1 with 0
 *     bytes, type 2 with 1 byte, type 3 with 100 bytes, type 2 with 4000
 *     bytes, type 7 with 333 bytes of binary data full of zero bytes;
 *   P: IPC_PRIVATE, mode 0640, empty; a test_fork() child R is blocked in
 *     msgrcv(P, type 9) (seen asleep in that system call before READY); it
 *     retries on EINTR (the SIGTERM interrupts it) and must receive nothing
 *     before the root sends.
 * Checked after the restore, in the root: msgget(key) gives Q's id again;
 * IPC_STAT of Q and P gives the key, mode, owner, creator, msg_qbytes,
 * msg_qnum and msg_cbytes as before; R is asleep in msgrcv again within 5 s
 * and has received nothing; Q's messages, received with msgrcv(type 0), come
 * in their order with their types and exact bytes, and then Q is empty.
 * Last the root sends R a type 9 message: R must receive it (only it, and
 * only then) and exit. The root removes the queues at exit (atexit), pass or
 * fail.
 *
 * CORRUPT(k), after the SIGTERM: 1 Q's type 3 message is dropped; 2 Q's
 * first message is received and sent again (now last); 3 Q's msg_qbytes
 * becomes 10000; 4 P gets a type 9 message before the root's checks (R is
 * woken early); 5 a byte of Q's 4000-byte message changes (all messages
 * received and sent again in order); 6 Q's mode becomes 0644.
 */
#include "lib.h"

#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/syscall.h>

#define KEY_PREFIX 0x7c000000
#define QBYTES 12000
#define NMSG 5
#define WAIT_S 5
#define HELLO "a type 9 message sent after the restore"

struct msgbuf_big {
	long mtype;
	unsigned char mtext[8192];
};

struct want {
	long type;
	size_t len;
	unsigned char *data;
};

/* Shared between the root and R (MAP_SHARED|MAP_ANONYMOUS). */
struct shared {
	volatile uint64_t sent;		/* root -> R: the type 9 message is being sent */
	volatile uint64_t got;		/* R -> root: its msgrcv returned */
};

static key_t key;
static int qid = -1, qid_p = -1, qid2 = -1;
static struct shared *sh;
static struct want msgs[NMSG];
static struct msgbuf_big mb;

static void cleanup(void)
{
	if (getpid() != test_root_pid)
		return;
	int ids[] = { qid, qid_p, qid2, msgget(key, 0) };
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		if (ids[i] >= 0)
			msgctl(ids[i], IPC_RMID, NULL);
}

static void send_msg(int id, long type, const void *data, size_t len, const char *what)
{
	mb.mtype = type;
	memcpy(mb.mtext, data, len);
	if (msgsnd(id, &mb, len, IPC_NOWAIT))
		fail("%s: msgsnd(type %ld, %zu bytes): %m", what, type, len);
}

static struct msqid_ds stat_of(int id, const char *what)
{
	struct msqid_ds ds;
	if (msgctl(id, IPC_STAT, &ds))
		fail("%s: msgctl(%d, IPC_STAT): %m", what, id);
	return ds;
}

/* 1 if pid sleeps in msgrcv; else what it shows, in seen. */
static int in_msgrcv(pid_t pid, char *seen, size_t len)
{
	char path[64], buf[512];
	char state = '?';
	long nr = -2;		/* -2: unreadable */

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (f) {
		if (fgets(buf, sizeof(buf), f) && strrchr(buf, ')'))
			state = strrchr(buf, ')')[2];
		fclose(f);
	}
	snprintf(path, sizeof(path), "/proc/%d/syscall", pid);
	f = fopen(path, "r");
	if (f) {
		if (fgets(buf, sizeof(buf), f))
			nr = strncmp(buf, "running", 7) ? strtol(buf, NULL, 10) : -3;
		fclose(f);
	}
	snprintf(seen, len, "state %c, system call %ld", state, nr);
	return state == 'S' && (nr == SYS_msgrcv || nr == -2);
}

static void wait_in_msgrcv(pid_t pid, const char *when)
{
	char seen[96];
	double t0 = test_now();
	while (!in_msgrcv(pid, seen, sizeof(seen))) {
		if (sh->got)
			fail("%s: R's msgrcv returned before the root sent", when);
		if (test_now() - t0 > WAIT_S)
			fail("%s: R (pid %d) is not asleep in msgrcv within %d s: %s", when, pid,
			     WAIT_S, seen);
		usleep(1000);
	}
}

/* R: blocked receiving type 9 from P until the root sends it. */
static void child_r(void)
{
	int eintr = 0;
	ssize_t n;

	test_child_ready();
	while ((n = msgrcv(qid_p, &mb, sizeof(mb.mtext), 9, 0)) < 0) {
		if (errno != EINTR)
			fail("R: msgrcv(type 9): %m");
		eintr++;
	}
	sh->got = 1;
	if (!sh->sent)
		fail("R: msgrcv(type 9) returned before the root sent (type %ld, %zd bytes, after "
		     "%d EINTR)", mb.mtype, n, eintr);
	if (mb.mtype != 9 || n != (ssize_t)strlen(HELLO) || memcmp(mb.mtext, HELLO, n))
		fail("R: received type %ld, %zd bytes '%.*s', want type 9 '%s'", mb.mtype, n,
		     (int)n, mb.mtext, HELLO);
	test_msg("R: msgrcv returned after the send (%d EINTR before)", eintr);
	pass();
}

static void check_stat(int id, struct msqid_ds was, const char *what)
{
	struct msqid_ds now = stat_of(id, what);
	if (now.msg_perm.__key != was.msg_perm.__key)
		fail("%s: key %#x, was %#x", what, (unsigned)now.msg_perm.__key,
		     (unsigned)was.msg_perm.__key);
	if (now.msg_perm.mode != was.msg_perm.mode)
		fail("%s: mode %#o, was %#o", what, now.msg_perm.mode, was.msg_perm.mode);
	if (now.msg_perm.uid != was.msg_perm.uid || now.msg_perm.gid != was.msg_perm.gid ||
	    now.msg_perm.cuid != was.msg_perm.cuid || now.msg_perm.cgid != was.msg_perm.cgid)
		fail("%s: owner uid %d gid %d, creator uid %d gid %d; was %d %d, %d %d", what,
		     now.msg_perm.uid, now.msg_perm.gid, now.msg_perm.cuid, now.msg_perm.cgid,
		     was.msg_perm.uid, was.msg_perm.gid, was.msg_perm.cuid, was.msg_perm.cgid);
	if (now.msg_qbytes != was.msg_qbytes)
		fail("%s: msg_qbytes %lu, was %lu", what, (unsigned long)now.msg_qbytes,
		     (unsigned long)was.msg_qbytes);
	if (now.msg_qnum != was.msg_qnum || now.__msg_cbytes != was.__msg_cbytes)
		fail("%s: %lu messages of %lu bytes, was %lu of %lu", what,
		     (unsigned long)now.msg_qnum, (unsigned long)now.__msg_cbytes,
		     (unsigned long)was.msg_qnum, (unsigned long)was.__msg_cbytes);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	atexit(cleanup);
	key = KEY_PREFIX | (getpid() & 0xffffff);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		fail("mmap: %m");

	qid = msgget(key, IPC_CREAT | IPC_EXCL | 0600);
	if (qid < 0 && errno == EEXIST) {
		/* Left by a killed run that had the same pid. */
		msgctl(msgget(key, 0), IPC_RMID, NULL);
		qid = msgget(key, IPC_CREAT | IPC_EXCL | 0600);
	}
	if (qid < 0)
		fail("msgget(%#x): %m", (unsigned)key);
	struct msqid_ds ds = stat_of(qid, "Q");
	ds.msg_qbytes = QBYTES;
	if (msgctl(qid, IPC_SET, &ds))
		fail("IPC_SET msg_qbytes: %m");

	static const long types[NMSG] = { 1, 2, 3, 2, 7 };
	static const size_t lens[NMSG] = { 0, 1, 100, 4000, 333 };
	for (int i = 0; i < NMSG; i++) {
		msgs[i] = (struct want){ types[i], lens[i], malloc(lens[i] + 1) };
		test_fill(msgs[i].data, lens[i], 0x3e55a0 + i);
	}
	for (size_t j = 0; j < msgs[4].len; j++)	/* binary, many zero bytes */
		if (j % 3 == 0 || (j >= 100 && j < 140))
			msgs[4].data[j] = 0;
	for (int i = 0; i < NMSG; i++)
		send_msg(qid, msgs[i].type, msgs[i].data, msgs[i].len, "Q");

	qid_p = msgget(IPC_PRIVATE, IPC_CREAT | 0640);
	if (qid_p < 0)
		fail("msgget(IPC_PRIVATE): %m");

	pid_t r = test_fork();
	if (r == 0)
		child_r();
	test_wait_children_ready();
	wait_in_msgrcv(r, "before READY");

	struct msqid_ds was_q = stat_of(qid, "Q"), was_p = stat_of(qid_p, "P");
	if (was_q.msg_qnum != NMSG || was_q.__msg_cbytes != 4434 || was_q.msg_qbytes != QBYTES)
		fail("Q: %lu messages of %lu bytes, msg_qbytes %lu", (unsigned long)was_q.msg_qnum,
		     (unsigned long)was_q.__msg_cbytes, (unsigned long)was_q.msg_qbytes);
	test_msg("key %#x, msqids Q %d, P %d; R %d waits in msgrcv(P, type 9)", (unsigned)key,
		 qid, qid_p, r);
	test_ready();
	test_waitsig();

	if (CORRUPT(1) && msgrcv(qid, &mb, sizeof(mb.mtext), 3, IPC_NOWAIT) < 0)
		fail("CORRUPT(1): msgrcv: %m");
	if (CORRUPT(2)) {
		ssize_t n = msgrcv(qid, &mb, sizeof(mb.mtext), 0, IPC_NOWAIT);
		if (n < 0)
			fail("CORRUPT(2): msgrcv: %m");
		if (msgsnd(qid, &mb, n, IPC_NOWAIT))
			fail("CORRUPT(2): msgsnd: %m");
	}
	if (CORRUPT(3)) {
		struct msqid_ds d = stat_of(qid, "Q");
		d.msg_qbytes = 10000;
		msgctl(qid, IPC_SET, &d);
	}
	if (CORRUPT(4))
		send_msg(qid_p, 9, "early", 5, "CORRUPT(4)");
	if (CORRUPT(5)) {
		static struct msgbuf_big all[NMSG];
		ssize_t n[NMSG];
		for (int i = 0; i < NMSG; i++)
			if ((n[i] = msgrcv(qid, &all[i], sizeof(all[i].mtext), 0, IPC_NOWAIT)) < 0)
				fail("CORRUPT(5): msgrcv: %m");
		all[3].mtext[1234] ^= 0x10;
		for (int i = 0; i < NMSG; i++)
			if (msgsnd(qid, &all[i], n[i], IPC_NOWAIT))
				fail("CORRUPT(5): msgsnd: %m");
	}
	if (CORRUPT(6)) {
		struct msqid_ds d = stat_of(qid, "Q");
		d.msg_perm.mode = 0644;
		msgctl(qid, IPC_SET, &d);
	}

	/* The queues: ids, keys, attributes, counts. */
	int id = msgget(key, 0);
	if (id != qid)
		fail("msgget(%#x) returns msqid %d (%s), was %d", (unsigned)key, id,
		     id < 0 ? strerror(errno) : "another queue", qid);
	check_stat(qid, was_q, "Q");
	check_stat(qid_p, was_p, "P");

	/* R still waits, with nothing received. */
	wait_in_msgrcv(r, "after the SIGTERM");

	/* Q's messages, in order, exactly. */
	for (int i = 0; i < NMSG; i++) {
		memset(&mb, 0xee, sizeof(mb));
		ssize_t n = msgrcv(qid, &mb, sizeof(mb.mtext), 0, IPC_NOWAIT);
		if (n < 0)
			fail("Q: message %d: msgrcv: %m", i);
		if (mb.mtype != msgs[i].type || (size_t)n != msgs[i].len)
			fail("Q: message %d is type %ld with %zd bytes, want type %ld with %zu bytes",
			     i, mb.mtype, n, msgs[i].type, msgs[i].len);
		for (size_t j = 0; j < msgs[i].len; j++)
			if (mb.mtext[j] != msgs[i].data[j])
				fail("Q: message %d (type %ld, %zu bytes) differs at byte %zu", i,
				     msgs[i].type, msgs[i].len, j);
	}
	ssize_t n = msgrcv(qid, &mb, sizeof(mb.mtext), 0, IPC_NOWAIT);
	if (n >= 0 || errno != ENOMSG)
		fail("Q: a sixth message: %s", n >= 0 ? "received" : strerror(errno));

	/* R goes on only now. */
	sh->sent = 1;
	__sync_synchronize();
	send_msg(qid_p, 9, HELLO, strlen(HELLO), "P");
	if (test_wait_word(&sh->got, 1, WAIT_S))
		fail("R's msgrcv did not return within %d s of the send", WAIT_S);
	int bad = test_reap_children();
	if (bad)
		fail("%d child process(es) failed", bad);
	struct msqid_ds p = stat_of(qid_p, "P");
	if (p.msg_qnum != 0)
		fail("P holds %lu messages after R received its one, want 0",
		     (unsigned long)p.msg_qnum);
	pass();
}
