#!/usr/bin/python3
"""An interval timer and queued signals through moves (test_migrate).

Usage: timer_signals.py SECONDS

Runs SECONDS with ITIMER_REAL ticking every 10 ms into a handler, while
SIGUSR1 (once) and SIGRTMIN+3 (three times, queued) wait blocked. At the
end it counts what was queued and checks the tick rate: a timer lost or
running twice in a move, or a pending signal dropped or delivered twice,
shows. Prints one numbered line every 50 ms, then the verdict; exits 0
when all is right, 3 when not.
"""
import signal
import sys
import time

seconds = float(sys.argv[1])
RT = signal.SIGRTMIN + 3
ticks = 0


def tick(signo, frame):
    global ticks
    ticks += 1


signal.signal(signal.SIGALRM, tick)
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1, RT])
signal.raise_signal(signal.SIGUSR1)
for _ in range(3):
    signal.raise_signal(RT)
signal.setitimer(signal.ITIMER_REAL, 0.01, 0.01)
start = time.monotonic()
line = 0
while time.monotonic() - start < seconds:
    line += 1
    print("line", line, flush=True)
    time.sleep(0.05)  # interrupted by ticks, resumed (PEP 475)
elapsed = time.monotonic() - start
signal.setitimer(signal.ITIMER_REAL, 0, 0)
usr1 = rt = 0
while True:
    info = signal.sigtimedwait([signal.SIGUSR1, RT], 0)
    if info is None:
        break
    if info.si_signo == signal.SIGUSR1:
        usr1 += 1
    else:
        rt += 1
rate = ticks / elapsed
ok = usr1 == 1 and rt == 3 and 40 <= rate <= 130
print("end usr1=%d rt=%d tick rate %s" % (usr1, rt, "ok" if 40 <= rate <= 130 else "WRONG (%.0f/s)" % rate))
sys.exit(0 if ok else 3)
