# manager_workers.py ROUNDS ITER: a multiprocessing.Manager tree. The
# manager's server process (with threads) listens on a UNIX socket in
# TMPDIR; two workers and the parent talk to it through connections it
# accepted: each worker extends a SHA-256 chain by ITER links a round and
# puts the digest in a shared dict, then tells the parent through a shared
# queue. The parent prints every round's two digests at the end: the same
# output whatever the interleaving (tests/integration).
import hashlib
import multiprocessing as mp
import sys


def work(k, d, q, rounds, iters):
    for r in range(rounds):
        h = ("%d-%d" % (k, r)).encode()
        for _ in range(iters):
            h = hashlib.sha256(h).digest()
        d["%d-%d" % (k, r)] = h.hex()[:8]
        q.put(r)


if __name__ == "__main__":
    rounds, iters = int(sys.argv[1]), int(sys.argv[2])
    with mp.Manager() as m:
        d, q = m.dict(), m.Queue()
        ps = [mp.Process(target=work, args=(k, d, q, rounds, iters)) for k in range(2)]
        for p in ps:
            p.start()
        for r in range(rounds):
            q.get()
            q.get()
        for p in ps:
            p.join()
        for r in range(rounds):
            print(r, d["0-%d" % r], d["1-%d" % r], flush=True)
    print("done")
