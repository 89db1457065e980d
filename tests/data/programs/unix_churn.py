# unix_churn.py N [noaccept]: a UNIX server thread (listening in TMPDIR) and
# two client processes, each making N connections one after the other:
# connect, wait for the server's "go", send a number, read it doubled,
# close. Every connection is new, so one is often waiting to be accepted;
# the server speaks first, so its client has written nothing yet. Prints
# each client's total at the end: the same output every run
# (tests/integration).
#
# With "noaccept": one client connects and writes, the server never
# accepts, and the program sleeps for two minutes after printing "ready".
import multiprocessing as mp
import os
import socket
import sys
import tempfile
import threading
import time

n = int(sys.argv[1])
path = os.path.join(tempfile.mkdtemp(), "s")
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(16)

if len(sys.argv) > 2 and sys.argv[2] == "noaccept":
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(path)
    c.sendall(b"hello")
    print("ready", flush=True)
    time.sleep(120)
    sys.exit(0)


def serve():
    while True:
        c, _ = srv.accept()
        c.sendall(b"go")
        x = int(c.recv(64))
        c.sendall(b"%d" % (x * 2))
        c.close()


def client(k, q):
    total = 0
    for i in range(n):
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(path)
        if c.recv(2) != b"go":
            raise SystemExit("no go")
        c.sendall(b"%d" % (i + k))
        total += int(c.recv(64))
        c.close()
    q.put((k, total))


if __name__ == "__main__":
    threading.Thread(target=serve, daemon=True).start()
    q = mp.Queue()
    ps = [mp.Process(target=client, args=(k, q)) for k in range(2)]
    for p in ps:
        p.start()
    results = sorted(q.get() for _ in ps)
    for p in ps:
        p.join()
    for k, total in results:
        print(k, total)
    os.unlink(path)
    os.rmdir(os.path.dirname(path))
