#!/usr/bin/env python3
"""Runs a zdtm program on a terminal of its own, for run_zdtm.sh.

    zdtm_pty.py LOG WORKDIR PROGRAM

Becomes PROGRAM (exec, same PID) as the leader of a new session whose
controlling terminal is a new pseudo-terminal at its fds 0-2. A relay,
detached from it (double fork, a session of its own), copies what the
terminal prints into LOG (carriage returns dropped, so lines read as from
a file) and keeps the terminal's slave open, so that it outlives the
program between a checkpoint and a restore. WORKDIR/pty.name gets the
terminal's name (`roam restore` is given it as its fds 0-2) and
WORKDIR/pty.relay the relay's PID (the runner kills it at the end).
"""
import fcntl
import os
import sys
import termios

log, work, program = sys.argv[1], sys.argv[2], sys.argv[3]
master, slave = os.openpty()
name = os.ttyname(slave)
with open(os.path.join(work, "pty.name"), "w") as f:
    f.write(name + "\n")

middle = os.fork()
if middle == 0:
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    keep = os.open(name, os.O_RDWR | os.O_NOCTTY)  # the terminal never loses its last slave
    os.close(slave)
    with open(os.path.join(work, "pty.relay"), "w") as f:
        f.write("%d\n" % os.getpid())
    out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    for fd in range(3):
        os.close(fd)
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        os.write(out, data.replace(b"\r", b""))
    os._exit(0)

os.waitpid(middle, 0)
os.close(master)
os.setsid()
# Opened by name, as `roam restore`'s fds will be (same file flags).
os.close(slave)
slave = os.open(name, os.O_RDWR | os.O_NOCTTY)
fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
for fd in range(3):
    os.dup2(slave, fd)
os.close(slave)
os.execv(program, [program])
