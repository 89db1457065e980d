#!/usr/bin/python3
"""A dialogue over a pseudo-terminal pair, as expect has one (test_migrate).

Usage: pty_dialog.py SECONDS

The parent makes a pty pair and a child on it (pty.fork: the child leads
a session whose controlling terminal is the slave). For SECONDS it types
numbered lines into the master, some in two halves a moment apart (so a
line is often half typed), and sometimes two lines before reading the
replies; the child, in canonical mode with echo off, answers each line
with "got N", whether its group is in the foreground and whether its
terminal's mode is still the one it set. The parent checks every answer,
in order, and prints "ok N" for each. A byte lost, repeated or
reordered in either direction, the terminal's mode or foreground lost,
shows. Ends with "done N" and exit 0, or "FAIL ..." and exit 3.
"""
import os
import pty
import sys
import termios
import time

seconds = float(sys.argv[1])
pid, master = pty.fork()
if pid == 0:
    mode = termios.tcgetattr(0)
    mode[3] &= ~termios.ECHO
    termios.tcsetattr(0, termios.TCSANOW, mode)
    print("ready", flush=True)
    for line in sys.stdin:
        fg = os.tcgetpgrp(0) == os.getpgrp()
        same = termios.tcgetattr(0) == mode
        print("got %s %s %s" % (line.strip(), "fg" if fg else "bg", "mode" if same else "mode-lost"), flush=True)
    sys.exit(0)

buf = b""
while not buf.endswith(b"ready\r\n"):  # the child's mode is set: no echo from here
    buf += os.read(master, 4096)
buf = b""

n = 0
end = time.time() + seconds
while time.time() < end:
    lines = [n, n + 1] if n % 5 == 0 else [n]
    for k in lines:
        half = str(k).encode()
        os.write(master, b"line " + half[:1])
        if k % 3 == 0:
            time.sleep(0.005)
        os.write(master, half[1:] + b"\n")
    want = "".join("got line %d fg mode\r\n" % k for k in lines)
    want_len = len(want)
    deadline = time.time() + 30
    while len(buf) < want_len:
        if time.time() > deadline:
            print("FAIL: waited for %d bytes, have %r" % (want_len, buf), flush=True)
            sys.exit(3)
        buf += os.read(master, 4096)
    chunk, buf = buf[:want_len].decode(), buf[want_len:]
    if chunk != want:
        print("FAIL: after typing %s: %r" % (lines, chunk), flush=True)
        sys.exit(3)
    for k in lines:
        print("ok %d" % k, flush=True)
    n = lines[-1] + 1
    time.sleep(0.01)
os.write(master, b"\x04")  # ^D: the child's stdin ends
_, status = os.waitpid(pid, 0)
if buf or status != 0:
    print("FAIL: left %r, child status %d" % (buf, status), flush=True)
    sys.exit(3)
print("done %d" % n, flush=True)
