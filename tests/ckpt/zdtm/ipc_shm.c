/*
 * System V shared memory segments survive with their ids, keys, sizes,
 * modes, owners, attach counts and contents, attached at the same addresses
 * with the same protections, and still shared between parent and child:
 *   A: key 0x7aPPPPPP (PPPPPP: the root's pid), 3 pages and 100 bytes (a
 *     size no page multiple), mode 0640, attached read-write;
 *   B: IPC_PRIVATE, 4 pages, attached twice: read-write (its last 2 pages
 *     then mprotect'ed to PROT_READ, so two VMAs) and SHM_RDONLY (the attach
 *     can never be made writable: mprotect(PROT_WRITE) fails with EACCES);
 *   C: IPC_PRIVATE, 2 pages, attached and IPC_RMID'ed at once (it lives while
 *     attached, marked SHM_DEST); its contents are written by the child.
 * A test_fork() child inherits every attach.
 * Checked after the restore, in the root: shmget(key) gives A's id again;
 * IPC_STAT of each id gives the key, size, mode, owner and creator, and
 * SHM_DEST for C only; /proc/self/maps shows each attach at its address
 * with its length, perms (rw-s, rw-s | r--s, r--s, rw-s) and shmid (the
 * inode); writes to the read-only parts fault; contents; shm_nattch as
 * before. Then the sharing: the root writes a word into each segment (into
 * B through its read-write attach) and the child must see them (in B
 * through its SHM_RDONLY attach); the child writes a word into each and the
 * root must see them, within 5 s. The child then checks the contents too.
 * The root removes every segment it made at exit (atexit), pass or fail.
 *
 * CORRUPT(k), after the SIGTERM: 1 a byte of A changes; 2 A is removed and
 * made again with the same key, size, mode and contents at the same address
 * (another id); 3 the SHM_RDONLY attach of B is replaced by a read-write
 * attach at the same address; 4 the root's attach of C is replaced by a
 * private anonymous copy at the same address; 5 the child's attach of C is
 * replaced by a private anonymous copy (after the root's checks, before the
 * handshake); 6 B's PROT_READ part is made writable again; 7 A's mode
 * becomes 0600; 8 A gets an extra attach (shm_nattch + 1); 9 A's owner
 * becomes uid 65534.
 */
#include "lib.h"

#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>

#define KEY_PREFIX 0x7a000000
#define SEED_A 0x5a5a01
#define SEED_B 0x5a5a02
#define SEED_C 0x5a5a03
#define HS 64			/* bytes of handshake words at each segment's start */
#define PARENT_MAGIC 0x1111222233334444ULL
#define CHILD_MAGIC 0x5555666677778888ULL
#define WAIT_S 5

/* At each segment's start: p written by the root, c by the child. */
struct hs {
	volatile uint64_t p, c;
};

static size_t page, size_a, size_b, size_c;
static key_t key_a;
static int id_a = -1, id_b = -1, id_c = -1, id_a2 = -1;
static unsigned char *a, *b_rw, *b_ro, *c;

static void cleanup(void)
{
	if (getpid() != test_root_pid)
		return;
	int ids[] = { id_a, id_b, id_c, id_a2, shmget(key_a, 0, 0) };
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		if (ids[i] >= 0)
			shmctl(ids[i], IPC_RMID, NULL);
}

static size_t round_page(size_t n)
{
	return (n + page - 1) / page * page;
}

static void *attach(int id, int flags, const char *what)
{
	void *p = shmat(id, NULL, flags);
	if (p == (void *)-1)
		fail("shmat %s: %m", what);
	return p;
}

static struct shmid_ds stat_of(int id, const char *what)
{
	struct shmid_ds ds;
	if (shmctl(id, IPC_STAT, &ds))
		fail("%s: shmctl(%d, IPC_STAT): %m", what, id);
	return ds;
}

struct vma {
	unsigned long start, end, ino;
	char perms[8], path[256];
};

/* The VMA of /proc/self/maps holding addr; fails if there is none. */
static struct vma vma_at(const void *addr, const char *what)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	struct vma v;
	if (!f)
		fail("open /proc/self/maps: %m");
	while (fgets(line, sizeof(line), f)) {
		unsigned long off;
		int pos = 0;
		if (sscanf(line, "%lx-%lx %7s %lx %*s %lu %n", &v.start, &v.end, v.perms, &off,
			   &v.ino, &pos) < 5)
			continue;
		if ((unsigned long)addr < v.start || (unsigned long)addr >= v.end)
			continue;
		snprintf(v.path, sizeof(v.path), "%s", line + pos);
		v.path[strcspn(v.path, "\n")] = 0;
		fclose(f);
		return v;
	}
	fclose(f);
	fail("%s: nothing mapped at %p", what, addr);
}

/* [addr, addr + len) must be one VMA with perms, showing segment id (made
 * with key). */
static void check_vma(const void *addr, size_t len, const char *perms, int id, key_t key,
		      const char *what)
{
	struct vma v = vma_at(addr, what);
	char name[32];
	snprintf(name, sizeof(name), "/SYSV%08x", (unsigned)key);
	if (v.start != (unsigned long)addr || v.end != (unsigned long)addr + len ||
	    strcmp(v.perms, perms) || v.ino != (unsigned long)id || strncmp(v.path, name, strlen(name)))
		fail("%s: maps shows %lx-%lx %s inode %lu '%s', want %lx-%lx %s inode %d '%s...'",
		     what, v.start, v.end, v.perms, v.ino, v.path, (unsigned long)addr,
		     (unsigned long)addr + len, perms, id, name);
}

static void check_probe(void *addr, int mode, int want_sig, const char *what)
{
	int code, sig = test_probe(addr, mode, &code);
	if (sig != want_sig)
		fail("%c access to %s at %p: signal %d, expected %d", mode, what, addr, sig,
		     want_sig);
}

static void check_fill(const unsigned char *base, size_t size, uint64_t seed, const char *what)
{
	long off = test_check_fill(base + HS, size - HS, seed);
	if (off >= 0)
		fail("%s differs at byte %ld (at %p)", what, off + HS, (void *)(base + HS + off));
}

/* Replaces [addr, addr + len) by a private anonymous copy of itself. */
static void private_copy(unsigned char *addr, size_t len)
{
	unsigned char *copy = malloc(len);
	memcpy(copy, addr, len);
	if (mmap(addr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
		 0) != addr)
		fail("mmap MAP_FIXED: %m");
	memcpy(addr, copy, len);
	free(copy);
}

static void child(void)
{
	struct hs *ha = (struct hs *)a, *hb_rw = (struct hs *)b_rw, *hb_ro = (struct hs *)b_ro;
	struct hs *hc = (struct hs *)c;

	test_fill(c + HS, size_c - HS, SEED_C);
	test_child_ready();
	test_waitsig();

	/* The root writes A's word last, once its checks are done. */
	if (test_wait_word(&ha->p, PARENT_MAGIC, 30))
		fail("child: the root's write into A after the restore is not visible (%#llx)",
		     (unsigned long long)ha->p);
	__sync_synchronize();
	if (CORRUPT(5))
		private_copy(c, size_c);
	hc->c = CHILD_MAGIC;
	hb_rw->c = CHILD_MAGIC;
	ha->c = CHILD_MAGIC;
	if (hb_ro->p != PARENT_MAGIC)
		fail("child: the root's write into B is not visible through the SHM_RDONLY attach (%#llx)",
		     (unsigned long long)hb_ro->p);
	if (hc->p != PARENT_MAGIC)
		fail("child: the root's write into C is not visible (%#llx)",
		     (unsigned long long)hc->p);
	check_fill(a, size_a, SEED_A, "child: segment A");
	check_fill(b_ro, size_b, SEED_B, "child: segment B (SHM_RDONLY attach)");
	check_fill(b_rw, size_b, SEED_B, "child: segment B (read-write attach)");
	check_fill(c, size_c, SEED_C, "child: segment C");
	pass();
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	atexit(cleanup);
	page = sysconf(_SC_PAGESIZE);
	size_a = 3 * page + 100;
	size_b = 4 * page;
	size_c = 2 * page;
	key_a = KEY_PREFIX | (getpid() & 0xffffff);

	id_a = shmget(key_a, size_a, IPC_CREAT | IPC_EXCL | 0640);
	if (id_a < 0 && errno == EEXIST) {
		/* Left by a killed run that had the same pid. */
		shmctl(shmget(key_a, 0, 0), IPC_RMID, NULL);
		id_a = shmget(key_a, size_a, IPC_CREAT | IPC_EXCL | 0640);
	}
	if (id_a < 0)
		fail("shmget(%#x): %m", (unsigned)key_a);
	a = attach(id_a, 0, "A");
	test_fill(a + HS, size_a - HS, SEED_A);

	id_b = shmget(IPC_PRIVATE, size_b, IPC_CREAT | 0600);
	if (id_b < 0)
		fail("shmget B: %m");
	b_rw = attach(id_b, 0, "B");
	b_ro = attach(id_b, SHM_RDONLY, "B read-only");
	test_fill(b_rw + HS, size_b - HS, SEED_B);
	if (mprotect(b_rw + 2 * page, 2 * page, PROT_READ))
		fail("mprotect B: %m");

	id_c = shmget(IPC_PRIVATE, size_c, IPC_CREAT | 0600);
	if (id_c < 0)
		fail("shmget C: %m");
	c = attach(id_c, 0, "C");
	if (shmctl(id_c, IPC_RMID, NULL))
		fail("IPC_RMID C: %m");

	if (test_fork() == 0)
		child();
	test_wait_children_ready();

	struct shmid_ds was_a = stat_of(id_a, "A"), was_b = stat_of(id_b, "B"),
			was_c = stat_of(id_c, "C");
	if (!(was_c.shm_perm.mode & SHM_DEST) || (was_a.shm_perm.mode & SHM_DEST))
		fail("SHM_DEST: A's mode %#o, C's %#o", was_a.shm_perm.mode, was_c.shm_perm.mode);
	test_msg("key %#x; shmids A %d, B %d, C %d; shm_nattch %lu, %lu, %lu; A at %p, B at %p "
		 "and %p (SHM_RDONLY), C at %p", (unsigned)key_a, id_a, id_b, id_c,
		 (unsigned long)was_a.shm_nattch, (unsigned long)was_b.shm_nattch,
		 (unsigned long)was_c.shm_nattch, (void *)a, (void *)b_rw, (void *)b_ro, (void *)c);
	test_ready();
	test_waitsig();

	if (CORRUPT(1))
		a[HS + 4000] ^= 1;
	if (CORRUPT(2)) {
		unsigned char *copy = malloc(size_a);
		memcpy(copy, a, size_a);
		shmctl(id_a, IPC_RMID, NULL);
		id_a2 = shmget(key_a, size_a, IPC_CREAT | IPC_EXCL | 0640);
		if (id_a2 < 0 || shmat(id_a2, a, SHM_REMAP) != a)
			fail("CORRUPT(2): re-creating A: %m");
		memcpy(a, copy, size_a);
		free(copy);
	}
	if (CORRUPT(3) && shmat(id_b, b_ro, SHM_REMAP) != b_ro)
		fail("CORRUPT(3): shmat: %m");
	if (CORRUPT(4))
		private_copy(c, size_c);
	if (CORRUPT(6))
		mprotect(b_rw + 2 * page, 2 * page, PROT_READ | PROT_WRITE);
	if (CORRUPT(7)) {
		struct shmid_ds ds = stat_of(id_a, "A");
		ds.shm_perm.mode = 0600;
		shmctl(id_a, IPC_SET, &ds);
	}
	if (CORRUPT(8))
		attach(id_a, 0, "A again");
	if (CORRUPT(9)) {
		struct shmid_ds ds = stat_of(id_a, "A");
		ds.shm_perm.uid = 65534;
		shmctl(id_a, IPC_SET, &ds);
	}

	/* Ids, keys and attributes. */
	int id = shmget(key_a, 0, 0);
	if (id != id_a)
		fail("shmget(%#x) returns shmid %d (%s), was %d", (unsigned)key_a, id,
		     id < 0 ? strerror(errno) : "another segment", id_a);
	struct { const char *what; int id; struct shmid_ds was; size_t size; } segs[] = {
		{ "A", id_a, was_a, size_a },
		{ "B", id_b, was_b, size_b },
		{ "C", id_c, was_c, size_c },
	};
	for (int i = 0; i < 3; i++) {
		struct shmid_ds now = stat_of(segs[i].id, segs[i].what), was = segs[i].was;
		if (now.shm_perm.__key != was.shm_perm.__key)
			fail("%s: key %#x, was %#x", segs[i].what, (unsigned)now.shm_perm.__key,
			     (unsigned)was.shm_perm.__key);
		if (now.shm_segsz != segs[i].size)
			fail("%s: shm_segsz %zu, want %zu", segs[i].what, (size_t)now.shm_segsz,
			     segs[i].size);
		if (now.shm_perm.mode != was.shm_perm.mode)
			fail("%s: mode %#o, was %#o", segs[i].what, now.shm_perm.mode,
			     was.shm_perm.mode);
		if (now.shm_perm.uid != was.shm_perm.uid || now.shm_perm.gid != was.shm_perm.gid ||
		    now.shm_perm.cuid != was.shm_perm.cuid || now.shm_perm.cgid != was.shm_perm.cgid)
			fail("%s: owner uid %d gid %d, creator uid %d gid %d; was %d %d, %d %d",
			     segs[i].what, now.shm_perm.uid, now.shm_perm.gid, now.shm_perm.cuid,
			     now.shm_perm.cgid, was.shm_perm.uid, was.shm_perm.gid,
			     was.shm_perm.cuid, was.shm_perm.cgid);
	}

	/* Attaches: addresses, lengths, protections, which segment. */
	check_vma(a, round_page(size_a), "rw-s", id_a, key_a, "A");
	check_vma(b_rw, 2 * page, "rw-s", id_b, IPC_PRIVATE, "B's read-write attach");
	check_vma(b_rw + 2 * page, 2 * page, "r--s", id_b, IPC_PRIVATE,
		  "B's read-write attach, mprotect'ed PROT_READ part");
	check_vma(b_ro, size_b, "r--s", id_b, IPC_PRIVATE, "B's SHM_RDONLY attach");
	check_vma(c, size_c, "rw-s", id_c, IPC_PRIVATE, "C");
	check_probe(b_rw + page, 'w', 0, "B's read-write attach");
	check_probe(b_rw + 2 * page, 'w', SIGSEGV, "B's PROT_READ part");
	check_probe(b_ro + page, 'w', SIGSEGV, "B's SHM_RDONLY attach");
	int r = mprotect(b_ro, size_b, PROT_READ | PROT_WRITE);
	if (r == 0 || errno != EACCES)
		fail("mprotect(PROT_WRITE) on B's SHM_RDONLY attach: %s, want EACCES",
		     r ? strerror(errno) : "it worked");

	/* Contents. */
	check_fill(a, size_a, SEED_A, "segment A");
	check_fill(b_rw, size_b, SEED_B, "segment B (read-write attach)");
	check_fill(b_ro, size_b, SEED_B, "segment B (SHM_RDONLY attach)");
	check_fill(c, size_c, SEED_C, "segment C (written by the child)");

	/* Attach counts, and C still only attached. */
	for (int i = 0; i < 3; i++) {
		struct shmid_ds now = stat_of(segs[i].id, segs[i].what);
		if (now.shm_nattch != segs[i].was.shm_nattch)
			fail("%s: shm_nattch %lu, was %lu", segs[i].what,
			     (unsigned long)now.shm_nattch, (unsigned long)segs[i].was.shm_nattch);
	}

	/* Sharing with the child, both ways. A's word last: the child waits
	 * for it. */
	struct hs *ha = (struct hs *)a, *hb_rw = (struct hs *)b_rw, *hb_ro = (struct hs *)b_ro;
	struct hs *hc = (struct hs *)c;
	hb_rw->p = PARENT_MAGIC;
	hc->p = PARENT_MAGIC;
	__sync_synchronize();
	ha->p = PARENT_MAGIC;
	if (test_wait_word(&ha->c, CHILD_MAGIC, WAIT_S))
		fail("the child's write into A after the restore is not visible (%#llx)",
		     (unsigned long long)ha->c);
	if (test_wait_word(&hb_ro->c, CHILD_MAGIC, WAIT_S))
		fail("the child's write into B after the restore is not visible through the "
		     "SHM_RDONLY attach (%#llx)", (unsigned long long)hb_ro->c);
	if (test_wait_word(&hc->c, CHILD_MAGIC, WAIT_S))
		fail("the child's write into C after the restore is not visible (%#llx)",
		     (unsigned long long)hc->c);
	pass();
}
