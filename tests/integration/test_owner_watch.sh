#!/usr/bin/env bash
# The owner comes back (etc/owner-watch/roam-owner-watch, docs/WORKSTATIONS.md)
# on a real 3-node `roam cluster`: n2 is a workstation lent to the cluster.
# A local login whose terminal had input recently blocks n2 and sends its
# guests away, with their output intact; once the terminal has been idle,
# n2 takes guests again. A remote login does not count; a block made by an
# administrator is never lifted by the watch; the --loop mode does the same
# by itself.
#
# The owner is a real pseudo-terminal held open in n2 and a utmp record for
# it in n2's own /run/utmp (as login(1) writes it); "typing" stamps the
# terminal's access time, as the kernel does on input. Needs root.
set -u
source "$(dirname "$0")/lib.sh"
CLUSTER=towner
WATCH=$(cd "$(dirname "$0")/../../etc/owner-watch" && pwd)/roam-owner-watch
test_frame owner

ps_where() { cx n1 -- "$ROAM" ps --json 2>/dev/null | jq -r --arg g "$1" '[.processes[] | select(.gpid == $g) | .where] | first // ""'; }
accepts() { [ "$(json_field n1 n2 accepts_guests)" = "$1" ]; }  # accepts true|false: as n1 sees n2
watch_once() { cx n2 -- "$WATCH" --once --idle 20 --roam "$ROAM" 2>&1; }

cat >"$DATA/count.py" <<'PY'
import sys, time
for i in range(int(sys.argv[1])):
    print(i, flush=True)
    time.sleep(float(sys.argv[2]))
PY
in_order() { awk -v n="$2" 'NR-1 != $1 {exit 1} END {exit NR != n}' "$1"; }

"$ROAM" cluster down --name $CLUSTER >/dev/null 2>&1
if ! "$ROAM" cluster up --name $CLUSTER --nodes 3 >/dev/null; then
  fail "cluster up"; finish; exit 1
fi
wait_until 20 full_mesh n1 n2 n3 >/dev/null || fail "cluster never formed"
balance_off n1 n2 n3  # only the owner watch moves processes here

# The owner's terminal in n2: a pty held open by a process there, and its
# utmp record (type 7, USER_PROCESS; no host: a local login).
cx n2 -- python3 -c '
import os, pty, sys, time
m, s = pty.openpty()
print(os.getpid(), os.ttyname(s), flush=True)
time.sleep(3600)' >"$DATA/pty" 2>&1 &
BG_PIDS+=($!)
wait_until 10 grep -q /dev/pts/ "$DATA/pty" >/dev/null || fail "no pty in n2"
read -r TPID TTY <"$DATA/pty"
LINE=${TTY#/dev/}
utmp() {  # utmp HOST: n2's /run/utmp holds the owner's session, from HOST ("" = local)
  printf '[7] [%05d] [%-4s] [%-8s] [%-12s] [%-20s] [%-15s] [%s]\n' "$TPID" "${LINE#pts/}" owner "$LINE" "$1" \
    0.0.0.0 "$(date -u +%Y-%m-%dT%H:%M:%S,000000+00:00)" | cx n2 -- sh -c 'utmpdump -r >/run/utmp 2>/dev/null'
}
typed() { cx n2 -- touch -a "$TTY"; }                 # input now
idle() { cx n2 -- touch -a -d '-1 hour' "$TTY"; }    # no input for an hour
utmp ""
idle
listed() { cx n2 -- who | grep -q "^owner *$LINE "; }
check "who in n2 lists the owner's local session on $LINE" listed

# A guest on n2: numbered lines every 4 ms, ~10 s.
cx n1 -- "$ROAM" run --on n2 -- python3 "$DATA/count.py" 2500 0.004 </dev/null >"$DATA/job.out" 2>"$DATA/job.err" &
JOB=$!
BG_PIDS+=($JOB)
on_n2() { cx n1 -- "$ROAM" ps --json | jq -e '.processes[] | select(.where == "n2")' >/dev/null; }
wait_until 10 on_n2 >/dev/null ||
  fail "the job never ran on n2"
GPID=$(cx n1 -- "$ROAM" ps --json | jq -r '.processes[0].gpid')

out=$(watch_once); rc=$?
check "owner idle for an hour: nothing done (exit $rc, '$out')" [ "$rc" = 0 -a -z "$out" -a "$(ps_where "$GPID")" = n2 ]

typed
out=$(watch_once); rc=$?
where=$(ps_where "$GPID")
sent_away() { [ "$rc" = 0 ] && grep -q 'node blocked' <<<"$out" && grep -q 'expelled' <<<"$out" && [ -n "$where" ] && [ "$where" != n2 ]; }
check "owner typed on $LINE: n2 blocked and its guest sent away (exit $rc, '$(tr '\n' ' ' <<<"$out")'; now on '$where')" sent_away
wait_until 10 accepts false >/dev/null
check "n1 sees n2 refusing guests" accepts false
refused=$(cx n1 -- "$ROAM" run --on n2 -- true 2>&1 </dev/null); rc=$?
check "roam run --on n2 while the owner is there: refused ($rc, '$refused')" [ "$rc" = 255 ]
best=$(cx n1 -- "$ROAM" run -- hostname 2>&1 </dev/null)
check "roam run --best goes elsewhere ($best)" [ "$best" != n2 ]
out=$(watch_once); rc=$?
check "the owner still there: the next check does nothing more (exit $rc, '$out')" [ "$rc" = 0 -a -z "$out" ]

idle
out=$(watch_once); rc=$?
wait_until 10 accepts true >/dev/null
unblocked() { [ "$rc" = 0 ] && grep -q 'node unblocked' <<<"$out" && accepts true; }
check "owner gone: n2 unblocked (exit $rc, '$out'), n1 sees it take guests" unblocked
wait "$JOB"; rc=$?
job_whole() { [ "$rc" = 0 ] && [ ! -s "$DATA/job.err" ] && in_order "$DATA/job.out" 2500; }
check "the guest sent away ended with every line once, in order (exit $rc$(head -c 200 "$DATA/job.err"))" job_whole

# A remote login (ssh from 10.0.0.9) typing is not the owner.
utmp 10.0.0.9
typed
out=$(watch_once); rc=$?
check "a remote login's input does not block n2 (exit $rc, '$out')" [ "$rc" = 0 -a -z "$out" ]
check "n2 still takes guests" accepts true
utmp ""

# An administrator's block stays: the watch lifts only its own.
idle
cx n2 -- "$ROAM" node block >/dev/null
wait_until 10 accepts false >/dev/null
out=$(watch_once); rc=$?
sleep 1.5
admin_kept() { [ "$rc" = 0 ] && [ -z "$out" ] && accepts false; }
check "an administrator's block is not lifted by the watch (exit $rc, '$out')" admin_kept
cx n2 -- "$ROAM" node unblock >/dev/null
wait_until 10 accepts true >/dev/null

# --loop: the same, by itself.
cx n2 -- "$WATCH" --loop 1 --idle 20 --roam "$ROAM" >"$DATA/loop.out" 2>&1 &
BG_PIDS+=($!)
typed
t=$(wait_until 20 accepts false) && pass "--loop: blocked ${t}s after the owner typed" || fail "--loop: never blocked"
idle
t=$(wait_until 20 accepts true) && pass "--loop: unblocked ${t}s after the terminal went idle" || fail "--loop: never unblocked"
loop_said() { grep -q 'node blocked' "$DATA/loop.out" && grep -q 'node unblocked' "$DATA/loop.out"; }
check "--loop said what it did ($(tr '\n' ' ' <"$DATA/loop.out"))" loop_said
out=$(cx n2 -- "$WATCH" --idle x 2>&1); rc=$?
check "bad usage: exit 2 with a usage line ($rc, '$out')" [ "$rc" = 2 -a "${out#usage: }" != "$out" ]
finish
