#!/usr/bin/env python3
"""An interactive program on a terminal of its own (roam run -t), for
tty_shell.py: reads lines in the terminal's canonical mode and answers
each with what it sees of its terminal, so that a move that loses or
changes any of it shows in the answer.

    GOT <line> tty=1 fg=1 mode=ok size=COLSxROWS devtty=ok pid=PID

tty: fds 0-2 are terminals; fg: its process group is the terminal's
foreground; mode: the terminal's mode is the one it set at start (TOSTOP
added); devtty: /dev/tty and the terminal opened again by name, both
opened at start (fds above 2), still reach the same terminal. The line
"sleep" makes it sleep 2 s before reading on (input typed meanwhile waits
in the terminal); "quit" exits with 7.
"""
import os
import sys
import termios
import time

fd_devtty = os.open("/dev/tty", os.O_RDWR)
fd_name = os.open(os.ttyname(0), os.O_RDWR)
mode = termios.tcgetattr(0)
mode[3] |= termios.TOSTOP
termios.tcsetattr(0, termios.TCSANOW, mode)
mode = termios.tcgetattr(0)


def same_terminal(fd):
    a, b = os.fstat(fd), os.fstat(0)
    return os.isatty(fd) and (a.st_rdev == b.st_rdev or os.ttyname(fd) == "/dev/tty")


n = 0
while True:
    n += 1
    sys.stdout.write("READY %d>" % n)
    sys.stdout.flush()
    line = sys.stdin.readline()
    if not line:
        print("EOF")
        break
    line = line.rstrip("\n")
    tty = all(os.isatty(fd) for fd in (0, 1, 2))
    fg = os.tcgetpgrp(0) == os.getpgrp()
    ok_mode = termios.tcgetattr(0) == mode
    size = os.get_terminal_size(0)
    devtty = same_terminal(fd_devtty) and same_terminal(fd_name)
    os.write(fd_devtty, b"(via /dev/tty)\n")
    print("GOT %s tty=%d fg=%d mode=%s size=%dx%d devtty=%s pid=%d" %
          (line, tty, fg, "ok" if ok_mode else "changed", size.columns, size.lines, "ok" if devtty else "lost",
           os.getpid()))
    sys.stdout.flush()
    if line == "sleep":
        time.sleep(2)
    if line == "quit":
        sys.exit(7)
