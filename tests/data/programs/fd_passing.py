"""Passes open files between two processes over a UNIX socket, faster than
they are received, so that at any moment many fds are in flight (sent with
SCM_RIGHTS, not received yet): a moved or checkpointed tree must carry them.

The parent sends N messages "file I", each with two fds: a deleted
temporary file holding I's content, and the write end of one pipe (the same
one every time). The child receives one every DELAY seconds, reads the file
through the fd it got and acknowledges on the pipe through the other. The
child prints the SHA-256 of all it read, the parent how many acknowledgements
came back. Output is the same on every run.

usage: fd_passing.py N DELAY
"""
import hashlib
import os
import socket
import sys
import tempfile
import time

n, delay = int(sys.argv[1]), float(sys.argv[2])
a, b = socket.socketpair()
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    a.close()
    os.close(r)
    os.close(w)
    h = hashlib.sha256()
    for i in range(n):
        msg, fds, _, _ = socket.recv_fds(b, 64, 2)
        if msg != b"file %d" % i or len(fds) != 2:
            print("child: got %r with %d fds for message %d" % (msg, len(fds), i), flush=True)
            os._exit(1)
        with os.fdopen(fds[0], "rb") as f:
            h.update(f.read())
        os.write(fds[1], b"ack %d\n" % i)
        os.close(fds[1])
        time.sleep(delay)
    print("child read", n, "files:", h.hexdigest(), flush=True)
    os._exit(0)
b.close()
for i in range(n):
    with tempfile.TemporaryFile() as t:  # deleted at once: its fd in flight is all that is left of it
        t.write(b"content of file %d\n" % i * (1 + i % 50))
        t.seek(0)
        socket.send_fds(a, [b"file %d" % i], [t.fileno(), w])
os.close(w)
acks = b""
while True:
    chunk = os.read(r, 65536)
    if not chunk:
        break
    acks += chunk
_, status = os.waitpid(pid, 0)
print("parent got", acks.count(b"\n"), "acks; child exit", os.waitstatus_to_exitcode(status), flush=True)
sys.exit(0 if acks.count(b"\n") == n and status == 0 else 1)
