# threads_barrier.py ROUNDS ITER: 3 threads each extend a SHA-256 hash chain
# by ITER links a round and meet the main thread at a barrier twice a round;
# the main thread prints each round's digest of all three chains. The
# output is the same whatever the interleaving, and the threads sleep in
# futexes all the time: a multi-threaded program whose output proves that
# every thread went on from where it was (tests/integration).
import hashlib
import sys
import threading

N, ROUNDS, ITER = 3, int(sys.argv[1]), int(sys.argv[2])
h = [hashlib.sha256(bytes([i])).digest() for i in range(N)]
bar = threading.Barrier(N + 1)


def work(i):
    for r in range(ROUNDS):
        x = h[i]
        for _ in range(ITER):
            x = hashlib.sha256(x).digest()
        h[i] = x
        bar.wait()  # the round is done
        bar.wait()  # the main thread has printed it


ts = [threading.Thread(target=work, args=(i,), name="worker%d" % i) for i in range(N)]
for t in ts:
    t.start()
print("threads", threading.active_count(), flush=True)
for r in range(ROUNDS):
    bar.wait()
    print(r, hashlib.sha256(b"".join(h)).hexdigest()[:16], flush=True)
    bar.wait()
for t in ts:
    t.join()
print("done")
