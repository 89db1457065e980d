/*
 * sysv_workers N_CHILDREN ROUNDS: a small program built on System V IPC, for
 * checkpoint/restore and migration tests (tests/integration).
 *
 * The parent makes an IPC_PRIVATE shared memory segment (a counter and one
 * 64-bit sum per round) and an IPC_PRIVATE set of 2 semaphores (sem 0: a
 * mutex, always taken and given back with SEM_UNDO; sem 1: how many children
 * have finished), then forks N_CHILDREN children and waits for them in
 * wait(). Each child, for each round r, hashes for a while (30-45 ms on a
 * current x86-64 core, depending on the child and the round), then, holding
 * the mutex, adds its result into the round's sum and increments the
 * counter; at the end it posts sem 1 and exits. The parent checks that every
 * child exited 0, that sem 1 counts N_CHILDREN and that the counter is
 * N_CHILDREN * ROUNDS, prints "round R: HEX" for each round and
 * "total: HEX", removes the segment and the set and exits 0 (1 on an
 * error, after removing them too).
 *
 * Sums do not depend on the order of the additions, so stdout is the same
 * on every run whatever the scheduling, and after any checkpoint/restore
 * that kept the memory, the semaphores and their undo state. Progress
 * goes to stderr: the child that completes every 10th round of results
 * prints "progress: K/TOTAL results".
 *
 * With 3 children and 40 rounds it runs about 4 s on one core.
 *
 * Build: gcc -O2 -Wall -o sysv_workers sysv_workers.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#define ITERS 12000000L		/* hashing steps of the shortest unit of work */

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
};

struct results {
	uint64_t counter;	/* results added so far */
	uint64_t sum[];		/* one per round */
};

static int shmid = -1, semid = -1;

static void cleanup(void)
{
	if (shmid >= 0)
		shmctl(shmid, IPC_RMID, NULL);
	if (semid >= 0)
		semctl(semid, 0, IPC_RMID);
	shmid = semid = -1;
}

static void die(const char *what)
{
	fprintf(stderr, "sysv_workers: %s: %s\n", what, strerror(errno));
	cleanup();
	exit(1);
}

/* semop on one semaphore, retried when a signal interrupts it. */
static int sem_op(unsigned short num, short delta, short flags)
{
	struct sembuf sb = { num, delta, flags };
	int r;
	while ((r = semop(semid, &sb, 1)) < 0 && errno == EINTR)
		;
	return r;
}

/* The unit of work of child c in round r: a hash chain whose length depends
 * on both (so that children finish rounds in varying orders). */
static uint64_t work(int c, int r)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL * (uint64_t)(c + 1) ^ 0xbf58476d1ce4e5b9ULL * (uint64_t)(r + 1);
	long n = ITERS + (long)((c * 7 + r * 13) % 5) * (ITERS / 10);
	for (long i = 0; i < n; i++) {
		x ^= x >> 31;
		x *= 0x94d049bb133111ebULL;
		x ^= x >> 29;
		x += (uint64_t)i;
	}
	return x;
}

static void child(int c, int rounds, int nchildren, struct results *res)
{
	uint64_t total = (uint64_t)rounds * nchildren;
	for (int r = 0; r < rounds; r++) {
		uint64_t v = work(c, r);
		if (sem_op(0, -1, SEM_UNDO))
			_exit(2);
		/* A read-modify-write that only the mutex makes safe. */
		uint64_t s = res->sum[r];
		res->sum[r] = s + v;
		uint64_t k = ++res->counter;
		if (sem_op(0, 1, SEM_UNDO))
			_exit(2);
		if (k % (10 * (uint64_t)nchildren) == 0 || k == total)
			fprintf(stderr, "progress: %" PRIu64 "/%" PRIu64 " results\n", k, total);
	}
	if (sem_op(1, 1, 0))
		_exit(2);
	_exit(0);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: sysv_workers N_CHILDREN ROUNDS\n");
		return 2;
	}
	int nchildren = atoi(argv[1]), rounds = atoi(argv[2]);
	if (nchildren < 1 || nchildren > 64 || rounds < 1 || rounds > 100000) {
		fprintf(stderr, "sysv_workers: N_CHILDREN 1..64, ROUNDS 1..100000\n");
		return 2;
	}

	size_t size = sizeof(struct results) + rounds * sizeof(uint64_t);
	shmid = shmget(IPC_PRIVATE, size, IPC_CREAT | 0600);
	if (shmid < 0)
		die("shmget");
	struct results *res = shmat(shmid, NULL, 0);
	if (res == (void *)-1)
		die("shmat");
	semid = semget(IPC_PRIVATE, 2, IPC_CREAT | 0600);
	if (semid < 0)
		die("semget");
	unsigned short init[2] = { 1, 0 };
	if (semctl(semid, 0, SETALL, (union semun){ .array = init }))
		die("semctl SETALL");

	fflush(NULL);
	for (int c = 0; c < nchildren; c++) {
		pid_t pid = fork();
		if (pid < 0)
			die("fork");
		if (pid == 0)
			child(c, rounds, nchildren, res);
	}

	int bad = 0;
	for (int c = 0; c < nchildren; c++) {
		int st;
		pid_t pid;
		while ((pid = wait(&st)) < 0 && errno == EINTR)
			;
		if (pid < 0)
			die("wait");
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "sysv_workers: child %d ended with %s %d\n", pid,
				WIFEXITED(st) ? "exit status" : "signal",
				WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
			bad++;
		}
	}
	if (bad) {
		cleanup();
		return 1;
	}
	if (sem_op(1, -nchildren, IPC_NOWAIT))
		die("not every child posted sem 1");
	int mutex = semctl(semid, 0, GETVAL);
	if (mutex != 1) {
		fprintf(stderr, "sysv_workers: the mutex is %d after the children exited, want 1\n",
			mutex);
		cleanup();
		return 1;
	}
	if (res->counter != (uint64_t)nchildren * rounds) {
		fprintf(stderr, "sysv_workers: %" PRIu64 " results added, want %d\n", res->counter,
			nchildren * rounds);
		cleanup();
		return 1;
	}

	uint64_t total = 0;
	for (int r = 0; r < rounds; r++) {
		printf("round %d: %016" PRIx64 "\n", r, res->sum[r]);
		total += res->sum[r];
	}
	printf("total: %016" PRIx64 "\n", total);
	cleanup();
	if (fflush(stdout))
		return 1;
	return 0;
}
