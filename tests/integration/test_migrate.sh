#!/usr/bin/env bash
# Live migration on a real 4-node `roam cluster`: `roam migrate` moves a
# running process between guest nodes any number of times with its output,
# input, PID and exit status intact (the home terminal sees every byte once,
# in order); real programs give byte-identical results; a move that cannot
# be made is refused with its reason; a fault injected at each phase of a
# move (a roamd killed, a link cut) leaves exactly one copy running, with
# complete output, or the process lost only when its own node died.
#
# Needs root. Every `roam run` is started inside n1 (the home). The cluster
# runs with ROAM_TEST_FAULTS=1 so that faults can be injected per node
# (src/node/move_faults.h). Times are reported, never asserted.
set -u
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
CLUSTER=tmig
test_frame mig  # DATA: the cluster's shared directory
# --- helpers -----------------------------------------------------------------

# Jobs started at home are checkpointed there when they leave: they must not
# hold fds this test's own environment leaked (a pipe at fd 251 ...), which
# the engine rightly refuses. A user's shell has none such.
close_extra_fds() {
  local fd n
  for fd in /proc/$$/fd/*; do
    n=${fd##*/}
    [ "$n" -gt 2 ] 2>/dev/null && eval "exec $n>&-"
  done
  return 0
}
export -f close_extra_fds

ps_field() { home_ps_field "$@"; }  # bg_start, bg_pid, bg_rc: lib.sh
where_is() { [ "$(ps_field "$1" where)" = "$2" ]; }
cantmove_is() { [ "$(ps_field "$1" cantmove)" = "$2" ]; }
refused() {  # refused NAME PATTERN CMD...: CMD fails with one line matching PATTERN
  local name=$1 pat=$2; shift 2
  local out rc
  out=$("$@" 2>&1 >/dev/null); rc=$?
  check "$name: refused ('$out')" sh -c "[ $rc -ne 0 ] && [ \$(printf '%s\n' \"\$1\" | wc -l) -eq 1 ] && printf '%s' \"\$1\" | grep -q \"\$2\"" _ "$out" "$pat"
}
# copies PID COMM: on how many nodes n2..n4 a process PID named COMM exists.
copies() {
  local n c=0
  for n in n2 n3 n4; do
    [ "$(cx $n -- ps -p "$1" -o comm= 2>/dev/null | tr -d ' ')" = "$2" ] && c=$((c + 1))
  done
  echo $c
}
# in_order FILE COUNT: FILE holds the lines 0..COUNT-1, each once, in order.
in_order() { awk -v n="$2" 'NR-1 != $1 {exit 1} END {exit NR != n}' "$1"; }
migrate() { cx n1 -- "$ROAM" migrate "$@"; }  # migrate GPID NODE [--json]
restart_roamd() {  # restart_roamd NODE: after a roamd was killed by a fault
  wait_until 10 sh -c "[ \"\$('$ROAM' cluster status --name $CLUSTER --json | jq -r '.nodes[] | select(.name==\"$1\") | .state')\" = stopped ]" >/dev/null
  ROAM_TEST_FAULTS=1 cx "$1" -- "$ROAM_BIN/roamd" --daemon >/dev/null 2>&1
  wait_until 20 all_see "$1" alive n1 n2 n3 n4 >/dev/null
}
fault() { cx "$1" -- sh -c "echo '$2' > /run/roam/move-fault"; }  # fault NODE "PHASE ACTION"

# A job printing a numbered line every ~2 ms: 0..COUNT-1, or fewer if the
# file STOP appears (checked every 16 lines): a case then lasts as long as
# its checks, not as long as the job.
cat >"$DATA/count.py" <<'PY'
import os, sys, time
delay = float(sys.argv[2]) if len(sys.argv) > 2 else 0.002
stop = sys.argv[3] if len(sys.argv) > 3 else None
for i in range(int(sys.argv[1])):
    if stop and i % 16 == 0 and os.path.exists(stop):
        break
    print(i, flush=True)
    time.sleep(delay)
PY
# count_cmd NAME: the command line of a count.py job that prints until
# count_stop NAME.
count_cmd() { echo "python3 '$DATA/count.py' 100000 0.004 '$DATA/$1.stop'"; }
count_stop() { touch "$DATA/$1.stop"; }
# count_end NAME: lets the job print on for 0.5 s, stops it, and sets SEEN
# (its lines when called) and RC (its exit status).
count_end() { SEEN=$(wc -l <"$DATA/$1.out"); sleep 0.5; count_stop "$1"; RC=$(bg_rc "$1" 60); }
# lines_past FILE K: FILE holds the lines 0..N-1, each once, in order, with
# N > K + 20 (it went on printing after its K-th line, seen at the move).
lines_past() { awk -v k="$2" 'NR-1 != $1 {exit 1} END {exit NR <= k + 20}' "$1"; }
export -f lines_past
# A job echoing its stdin line by line, slowly.
cat >"$DATA/echo.py" <<'PY'
import sys, time
for line in sys.stdin:
    sys.stdout.write(line); sys.stdout.flush(); time.sleep(0.001)
PY

ROAM_TEST_FAULTS=1 "$ROAM" cluster up --name $CLUSTER --nodes 4 --shared "$DATA" --mem-limit 0,0,0,160M >/dev/null ||
  { fail "cluster up"; finish; exit 1; }
wait_until 20 full_mesh n1 n2 n3 n4 >/dev/null || fail "cluster never formed"
balance_off n1 n2 n3 n4  # this test's processes move when it moves them
# Each node numbers its own PIDs from 1, and a process keeps its home PID
# wherever it goes, so a home PID may be taken on a guest ("pid 278 is taken
# on n2": refused, as it must be). The home's PIDs start high here so that
# this test never meets that by chance.
cx n1 -- sh -c 'echo 20000 >/proc/sys/kernel/ns_last_pid' || fail "cannot set n1's ns_last_pid"

# --- 1. twenty moves of a process printing a numbered line every 2 ms ------------
bg_start count "$ROAM" run --on n2 -- python3 "$DATA/count.py" 6000
P=$(bg_pid count)
G=n1:$P
wait_until 10 where_is "$G" n2 >/dev/null
moves_ok=0 frozen=()
route=(n3 n4 home n2)
for i in $(seq 0 19); do
  to=${route[$((i % 4))]}
  j=$(migrate "$G" "$to" --json 2>>"$DATA/mig.err") && moves_ok=$((moves_ok + 1))
  frozen+=("$(jq -r '.frozen_ms | floor' <<<"$j" 2>/dev/null)")
done
check "20 moves of $G (n2 -> n3 -> n4 -> home -> n2 ...): $moves_ok succeeded (frozen ms: ${frozen[*]}) $(head -c 300 "$DATA/mig.err")" [ "$moves_ok" -eq 20 ]
check "roam ps after 20 moves: NMIG $(ps_field "$G" nmig), WHERE $(ps_field "$G" where) (want 20, n2)" \
  sh -c "[ '$(ps_field "$G" nmig)' = 20 ] && [ '$(ps_field "$G" where)' = n2 ]"
rc=$(bg_rc count 120)
check "the job ends with status 0 after its moves (got $rc)" [ "$rc" = 0 ]
check "every number 0..5999 reached the home terminal exactly once, in order ($(wc -l <"$DATA/count.out") lines)" \
  in_order "$DATA/count.out" 6000
check "no copy is left on any node" [ "$(copies "$P" python3)" = 0 ]

# --- 1b. a job that copied its stdout and stderr to other fds ---------------------
# (`exec 3>&1 4>&2`, as scripts do; valgrind keeps its log so): the copies
# are the same pipes home, and go with them. Until 2026-12-07 such a job
# could not move ("fd 1: pipe to a process outside the dumped tree").
bg_start dupfd "$ROAM" run --on n2 -- bash -c 'exec 3>&1 4>&2; for i in $(seq 0 599); do echo $i >&3; echo $i >&4; sleep 0.01; done; exit 5'
P=$(bg_pid dupfd)
wait_until 10 where_is "n1:$P" n2 >/dev/null
sleep 1.5  # roamd looks at what may move every second
check "a job writing through copies of its stdout and stderr: CANTMOVE '$(ps_field "n1:$P" cantmove)' (want none)" \
  cantmove_is "n1:$P" ""
ok=0
for to in n3 home n2; do migrate "n1:$P" "$to" >/dev/null 2>>"$DATA/dupfd.mig" && ok=$((ok + 1)); sleep 0.3; done
rc=$(bg_rc dupfd 60)
dupfd_ok() { [ "$ok" -eq 3 ] && [ "$rc" = 5 ] && in_order "$DATA/dupfd.out" 600 && in_order "$DATA/dupfd.err" 600; }
check "it moved $ok of 3 times (n3, home, n2; $(head -c 300 "$DATA/dupfd.mig")), exit $rc (want 5), every line once and in order on stdout and stderr" \
  dupfd_ok

# --- 2. input through a pipe, moved four times while it is read ----------------
seq 1 4000 >"$DATA/lines.txt"
bg_start echo --in "$DATA/lines.txt" "$ROAM" run --on n2 -- python3 "$DATA/echo.py"
P=$(bg_pid echo)
wait_until 10 where_is "n1:$P" n2 >/dev/null
ok=0
for to in n3 n4 n2 n3; do migrate "n1:$P" "$to" >/dev/null 2>&1 && ok=$((ok + 1)); sleep 0.3; done
rc=$(bg_rc echo 60)
check "stdin read while moved 4 times ($ok moves): no input byte lost or repeated (exit $rc)" \
  sh -c "[ $ok -eq 4 ] && [ '$rc' = 0 ] && cmp -s '$DATA/lines.txt' '$DATA/echo.out'"
# Home and back while it reads a pipe: the deputy stops reading for a move
# home (the rest stays in the pipe, read directly at home), and the source
# lets the process read what it was given before it freezes.
# slowcat reads 64 bytes every 2 ms, so that what the deputy gave it (all
# of it: the file is under the deputy's window) takes it ~3 s to read.
cat >"$DATA/slowcat.py" <<'PY'
import os, sys, time
while True:
    b = os.read(0, 64)
    if not b:
        break
    sys.stdout.buffer.write(b); sys.stdout.flush(); time.sleep(0.002)
PY
seq 1 17000 >"$DATA/lines2.txt"
bg_start echohome --in "$DATA/lines2.txt" "$ROAM" run --on n2 -- python3 "$DATA/slowcat.py"
P=$(bg_pid echohome)
wait_until 10 where_is "n1:$P" n2 >/dev/null
ok=0
for to in home n3 home n2; do migrate "n1:$P" "$to" >/dev/null 2>>"$DATA/echohome.mig" && ok=$((ok + 1)); sleep 0.3; done
rc=$(bg_rc echohome 120)
check "stdin from a pipe read while moved home, n3, home, n2 ($ok of 4 moves $(head -c 300 "$DATA/echohome.mig")): no input byte lost or repeated (exit $rc)" \
  sh -c "[ $ok -eq 4 ] && [ '$rc' = 0 ] && cmp -s '$DATA/lines2.txt' '$DATA/echohome.out'"

# A reader as fast as its pipe (sha256sum of 1 GiB) comes home at once: what
# the deputy read before the hold reached it goes to the source ahead of the
# move (stdin_hold_ack), instead of being held at home and refusing the move
# ("it was given input during the move"; 3 of 4 moves home were refused so).
fast_sum=$(yes 0123456789abcdef | head -c 1G | sha256sum | cut -d' ' -f1)
mkfifo "$DATA/fastsum.fifo"
(yes 0123456789abcdef | head -c 1G >"$DATA/fastsum.fifo") &
BG_PIDS+=($!)
bg_start fastsum --in "$DATA/fastsum.fifo" "$ROAM" run --on n2 -- sha256sum
P=$(bg_pid fastsum)
wait_until 10 where_is "n1:$P" n2 >/dev/null
ok=0
for to in home n3 home; do migrate "n1:$P" "$to" >/dev/null 2>>"$DATA/fastsum.mig" && ok=$((ok + 1)); sleep 0.2; done
rc=$(bg_rc fastsum 60)
check "sha256sum of 1 GiB from a pipe, moved home, n3, home while it reads ($ok of 3 moves $(head -c 300 "$DATA/fastsum.mig")): right sum (exit $rc)" \
  sh -c "[ $ok -eq 3 ] && [ '$rc' = 0 ] && [ \"\$(cut -d' ' -f1 '$DATA/fastsum.out')\" = '$fast_sum' ]"

# --- 2b. CPU affinity and nice go with the process; the engine's pin does not ------
# roamd's engine holds a frozen process or a seed on its own CPU while it
# works; afterwards each process must have its own mask and nice again, on
# every node it visits (taskset/nice set them before the exec).
cpus() { cx "$1" -- sh -c "grep Cpus_allowed_list /proc/$2/status | cut -f2"; }
all_cpus=$(cpus n3 1)
bg_start aff "$ROAM" run --on n2 -- nice -n 6 python3 -c 'import time; time.sleep(60)'
last_cpu=$(($(nproc) - 1))
bg_start aff1 "$ROAM" run --on n2 -- taskset -c "$last_cpu" python3 -c 'import time; time.sleep(60)'
P=$(bg_pid aff); P1=$(bg_pid aff1)
wait_until 10 where_is "n1:$P" n2 >/dev/null; wait_until 10 where_is "n1:$P1" n2 >/dev/null
ok=0
for to in n3 n4 n3; do
  migrate "n1:$P" "$to" >/dev/null 2>>"$DATA/aff.err" && migrate "n1:$P1" "$to" >/dev/null 2>>"$DATA/aff.err" && ok=$((ok + 1))
done
got=$(cpus n3 "$P"); got1=$(cpus n3 "$P1")
nice_now=$(cx n3 -- ps -o ni= -p "$P" | tr -d ' ')
check "3 moves each: $ok $(head -c 300 "$DATA/aff.err"); CPUs allowed after the moves: '$got' (want all, '$all_cpus'), '$got1' for the taskset -c $last_cpu one; nice $nice_now (want 6)" \
  sh -c "[ $ok = 3 ] && [ '$got' = '$all_cpus' ] && [ '$got1' = '$last_cpu' ] && [ '$nice_now' = 6 ]"
# Home again: the deputy becomes it; as root it may name the program's own
# file as /proc/PID/exe (not roam's), and its nice comes along.
want_exe=$(cx n3 -- readlink "/proc/$P/exe")  # the program, as it runs on n3
home_ok=no; migrate "n1:$P" home >/dev/null 2>>"$DATA/aff.err" && home_ok=yes
exe=$(cx n1 -- readlink "/proc/$P/exe")
nice_home=$(cx n1 -- ps -o ni= -p "$P" | tr -d ' ')
check "after coming home ($home_ok $(tail -c 200 "$DATA/aff.err")): /proc/PID/exe '$exe' (want '$want_exe', not roam), nice $nice_home (want 6)" \
  sh -c "[ $home_ok = yes ] && [ '$exe' = '$want_exe' ] && [ '$nice_home' = 6 ]"
cx n1 -- "$ROAM" kill "n1:$P" >/dev/null 2>&1; cx n1 -- "$ROAM" kill "n1:$P1" >/dev/null 2>&1
bg_rc aff 20 >/dev/null; bg_rc aff1 20 >/dev/null
# roamd runs ahead of its jobs (nice -10: a node full of jobs still answers
# probes); a guest starts at its caller's nice, as it would run at home.
bg_start nic nice -n 7 "$ROAM" run --on n2 -- python3 -c 'import time; time.sleep(60)'
N7=$(bg_pid nic)
wait_until 10 where_is "n1:$N7" n2 >/dev/null
nice_guest=$(cx n2 -- ps -o ni= -p "$N7" | tr -d ' ') nice_roamd=$(cx n2 -- ps -o ni= -C roamd | tr -d ' ')
check "nice -n 7 roam run --on n2: the guest runs at nice $nice_guest (want 7), roamd at $nice_roamd (want -10)" \
  sh -c "[ '$nice_guest' = 7 ] && [ '$nice_roamd' = -10 ]"
cx n1 -- "$ROAM" kill "n1:$N7" >/dev/null 2>&1

# --- 3. real programs moved mid-run give byte-identical results ------------------
head -c 120000000 /dev/urandom | base64 >"$DATA/big.txt"  # ~160 MB of text
real_program() {  # real_program NAME CMD...: run undisturbed at home, then on n2 with 3 moves
  local name=$1; shift
  # The undisturbed run goes on meanwhile, in n1 (it only makes the moved
  # one slower, which leaves more of it to move); first with REF_FIRST=1
  # (a program whose objects' ids would meet the moved one's at home).
  local ref=""
  if [ "${REF_FIRST:-0}" = 1 ]; then
    cx n1 -- bash -c '"$@" >"$0"' "$DATA/$name.ref" "$@" </dev/null
  else
    cx n1 -- bash -c '"$@" >"$0"' "$DATA/$name.ref" "$@" </dev/null &
    ref=$!
  fi
  bg_start "$name" "$ROAM" run --on n2 -- "$@"
  local p; p=$(bg_pid "$name")
  wait_until 10 where_is "n1:$p" n2 >/dev/null
  sleep 0.3
  # Home first, then out again: the two moves that must happen mid-run; a
  # third (to n2) is made if the program still runs (a fast machine may
  # finish it first: then "no process" is the right answer). It may also be
  # refused for a file the program deleted between the source's list and
  # the target's check (sort's spill files while it merges): the refusal is
  # then for a file that is gone everywhere.
  local ok=0 to gone
  for to in home n3 n2; do
    if migrate "n1:$p" "$to" >/dev/null 2>>"$DATA/$name.mig"; then
      ok=$((ok + 1))
    elif [ "$to" = n2 ] && grep -q "no process\|ended" "$DATA/$name.mig"; then
      :
    elif [ "$to" = n2 ] && gone=$(sed -n 's/.*: \(\/.*\) is missing on n2$/\1/p' "$DATA/$name.mig" | tail -1) &&
         [ -n "$gone" ] && [ ! -e "$gone" ]; then
      :
    else
      ok=-9  # a move that should have been made was not
    fi
    sleep 0.2
  done
  local rc; rc=$(bg_rc "$name" 120)
  [ -z "$ref" ] || wait "$ref"
  check "$name: moved $ok times mid-run (home, n3[, n2]), exit $rc, output identical to an undisturbed run $(head -c 300 "$DATA/$name.mig")" \
    sh -c "[ $ok -ge 2 ] && [ '$rc' = 0 ] && cmp -s '$DATA/$name.ref' '$DATA/$name.out'"
}
printf 'scale=2200; 4*a(1)\nquit\n' >"$DATA/pi.bc"
real_program bc bc -l "$DATA/pi.bc"
real_program python3 python3 -c 'import hashlib
h = hashlib.sha256()
for i in range(6000000): h.update(str(i * i).encode())
print(h.hexdigest())'
real_program gzip gzip -9 -c "$DATA/big.txt"
real_program sha256sum sha256sum "$DATA/big.txt" "$DATA/big.txt" "$DATA/big.txt" "$DATA/big.txt" "$DATA/big.txt"
# sort spills to ~300 temporary files, closes them and opens them again by
# name to merge: files roam cannot see at the move. They survive it only
# because the job's TMPDIR is the cluster's shared one (roamd.conf
# job_tmpdir, set by roam cluster); on a node's own /tmp the merge would
# find them missing after the move.
tmp_guest=$(cx n1 -- "$ROAM" run --on n2 -- sh -c 'echo "$TMPDIR"' </dev/null)
tmp_home=$(cx n1 -- "$ROAM" run --on n1 -- sh -c 'echo "$TMPDIR"' </dev/null)
tmp_own=$(cx n1 -- env TMPDIR=/scratch "$ROAM" run --on n2 -- sh -c 'echo "$TMPDIR"' </dev/null)
want_tmp="$(realpath "$DATA")/.roam-tmp"
check "jobs get the shared TMPDIR on a guest ('$tmp_guest') and at home ('$tmp_home'), want '$want_tmp'; a user's own TMPDIR stays ('$tmp_own')" \
  sh -c "[ '$tmp_guest' = '$want_tmp' ] && [ '$tmp_home' = '$want_tmp' ] && [ '$tmp_own' = /scratch ]"
real_program sort sh -c 'sort --parallel=1 -S 1M --batch-size=4 "$0" | sha256sum' "$DATA/big.txt"
# Multi-threaded: xz with 2 compressing threads, and the same behind a pipe.
head -c 40000000 "$DATA/big.txt" >"$DATA/part.txt"
real_program xz xz -T2 -1 -c "$DATA/part.txt"
real_program xzpipe sh -c 'cat "$0" | xz -T2 -1 | sha256sum' "$DATA/part.txt"
# multiprocessing.Manager (tests/data/programs/manager_workers.py): a
# server process listening on a UNIX socket in the job's (shared) TMPDIR,
# two workers and the parent connected to it.
cp "$HERE/../data/programs/manager_workers.py" "$DATA/manager.py"
real_program manager python3 "$DATA/manager.py" 40 150000
# A UNIX server under a stream of new connections
# (tests/data/programs/unix_churn.py): one often waits to be accepted at
# the freeze, and is carried (its client has written nothing yet).
cp "$HERE/../data/programs/unix_churn.py" "$DATA/unix_churn.py"
real_program unixchurn python3 "$DATA/unix_churn.py" 100000  # long enough to be moved twice mid-run (40000 once ended first in CI)
# One that cannot be carried (its client wrote before the server accepted)
# and is never accepted: the move waits for it, is refused as busy, and the
# home tries it twice more before it says so; the process runs on.
bg_start noaccept "$ROAM" run --on n2 -- python3 "$DATA/unix_churn.py" 1 noaccept
P=$(bg_pid noaccept)
wait_until 10 where_is "n1:$P" n2 >/dev/null
wait_until 10 grep -q ready "$DATA/noaccept.out" >/dev/null
if migrate "n1:$P" n3 >"$DATA/noaccept.mig" 2>&1; then
  fail "a UNIX connection that cannot be carried, never accepted: the move was made ($(head -c 300 "$DATA/noaccept.mig"))"
else
  check "a UNIX connection that cannot be carried, never accepted: refused as such ($(head -c 300 "$DATA/noaccept.mig"))" \
    grep -q "waiting to be accepted, one whose client already wrote to it" "$DATA/noaccept.mig"
fi
tries=$(cx n1 -- grep -c "n1:$P: .*trying again in" /run/roam/roamd.log)
check "the refused move was tried 3 times in all ($tries tries again)" test "$tries" = 2
check "the process runs on where it was (n2), one copy" sh -c "[ '$(ps_field "n1:$P" where)' = n2 ] && [ '$(copies "$P" python3)' = 1 ]"
cx n1 -- "$ROAM" kill -s KILL "n1:$P" >/dev/null
bg_rc noaccept 20 >/dev/null
# Open files passed over a UNIX socket faster than they are received
# (tests/data/programs/fd_passing.py): dozens of fds in flight (deleted
# O_TMPFILE files, a pipe's end) at every move.
cp "$HERE/../data/programs/fd_passing.py" "$DATA/fd_passing.py"
real_program fdpass python3 "$DATA/fd_passing.py" 80 0.04
# node.js with a worker thread (tests/data/programs/node_workers.js). Node
# sets close-on-exec on its stdio: leaving home after coming home, the
# process execs the deputy, which lost its output that way (the job ended
# with 255 and its output cut short).
cp "$HERE/../data/programs/node_workers.js" "$DATA/node_workers.js"
real_program node node "$DATA/node_workers.js" 300
# Java with its defaults (tests/data/programs/JavaWorkers.java, a thread
# pool): the JVM maps its perf-data file /tmp/hsperfdata_root/PID from the
# node's own /tmp, which the image carries; it was refused before ("is
# missing on n1"). Each node it left removed its copy, and the JVM removed
# the last at its exit: none is left anywhere.
if javac -d "$DATA/jw" "$HERE/../data/programs/JavaWorkers.java" 2>"$DATA/javac.err"; then
  real_program java java -cp "$DATA/jw" JavaWorkers 250
  left=""
  for n in n1 n2 n3 n4; do left+=$(cx $n -- sh -c 'ls /tmp/hsperfdata_root 2>/dev/null' | sed "s/^/$n:/" | tr '\n' ' '); done
  check "no JVM perf-data file is left on any node after the moves ($left)" test -z "$left"
  # A move that fails after the target wrote the file: the target removes
  # its copy; the source keeps its own, the JVM runs on there.
  bg_start javafault "$ROAM" run --on n2 -- java -cp "$DATA/jw" JavaWorkers 100000
  P=$(bg_pid javafault)
  wait_until 10 where_is "n1:$P" n2 >/dev/null
  wait_until 10 sh -c "'$ROAM' cluster exec --name $CLUSTER n2 -- test -e /tmp/hsperfdata_root/$P" >/dev/null
  fault n4 "target-restored cut"
  out=$(migrate "n1:$P" n4 2>&1); rc=$?
  sleep 0.3
  on4=$(cx n4 -- sh -c "ls /tmp/hsperfdata_root 2>/dev/null" | tr '\n' ' ')
  on2=$(cx n2 -- sh -c "ls /tmp/hsperfdata_root 2>/dev/null" | tr '\n' ' ')
  check "a JVM's move cut after its restore on n4 (rc $rc: '$out'): n4 holds no perf-data file ('$on4'), n2 its own ('$on2'), it runs on n2 ($(ps_field "n1:$P" where))" \
    sh -c "[ $rc -ne 0 ] && [ -z '$on4' ] && [ '$on2' = '$P ' ] && [ '$(ps_field "n1:$P" where)' = n2 ]"
  cx n1 -- "$ROAM" kill -s KILL "n1:$P" >/dev/null
  bg_rc javafault 20 >/dev/null
else
  fail "javac JavaWorkers.java: $(head -c 200 "$DATA/javac.err")"
fi
# A System V user (tests/data/programs/sysv_workers.c): a parent and 3
# children sharing a segment and a SEM_UNDO mutex. Its objects go with it:
# made again on each node it reaches, removed from each node it leaves.
if gcc -O2 -o "$DATA/sysv_workers" "$HERE/../data/programs/sysv_workers.c" 2>"$DATA/gcc.err"; then
  REF_FIRST=1 real_program sysv "$DATA/sysv_workers" 3 40  # IPC_PRIVATE ids: the same ones in n1 and n2
  left=""
  for n in n1 n2 n3 n4; do
    left+="$(cx "$n" -- sh -c 'tail -q -n +2 /proc/sysvipc/shm /proc/sysvipc/sem /proc/sysvipc/msg' | wc -l) "
  done
  check "sysv: no node keeps a System V object after its moves and its exit (objects on n1-n4: $left)" \
    test "$left" = "0 0 0 0 "
else
  fail "compile sysv_workers.c: $(head -c 300 "$DATA/gcc.err")"
fi

# tail -f waits in poll(2) with no timeout. Each move's pre-copy resumes
# that poll through restart_syscall, and the kernel's record of the call
# (its restart block) stays with the old process: a guest that restored it
# so gave it EINTR, and tail died after its first move between guests
# ("error waiting for inotify and output events: Interrupted system call").
# Lines appended while it moves n3, home, n2 must all reach home.
: >"$DATA/grow.log"
bg_start tailf "$ROAM" run --on n2 -- tail -n +1 -f "$DATA/grow.log"
P=$(bg_pid tailf)
wait_until 10 where_is "n1:$P" n2 >/dev/null
(for i in $(seq 1 150); do echo "line$i" >>"$DATA/grow.log"; sleep 0.02; done) &
writer=$!
ok=0
for to in n3 home n2; do migrate "n1:$P" "$to" >/dev/null 2>>"$DATA/tailf.mig" && ok=$((ok + 1)); sleep 0.3; done
wait "$writer"
wait_until 5 sh -c "[ \$(wc -l <'$DATA/tailf.out') -ge 150 ]" >/dev/null
where=$(ps_field "n1:$P" where)
cx n1 -- "$ROAM" kill "n1:$P" >/dev/null
# (What differs is shown: one run of 2026-12-07 in CI failed here, with
# every move made and no error, and could not be told more.)
differs=$(seq 1 150 | sed 's/^/line/' | diff - "$DATA/tailf.out" | head -4 | tr '\n' '|')
check "tail -f moved n3, home, n2 while 150 lines were appended ($ok of 3 moves, then on '$where'): every line once, in order, and no error ($(head -c 200 "$DATA/tailf.mig")$(head -c 200 "$DATA/tailf.err"); $(wc -l <"$DATA/tailf.out") lines; differs: $differs)" \
  sh -c "[ $ok = 3 ] && [ '$where' = n2 ] && [ ! -s '$DATA/tailf.err' ] && seq 1 150 | sed 's/^/line/' | cmp -s - '$DATA/tailf.out'"
bg_rc tailf 20 >/dev/null

# timeout(1) signals its whole process group when it fires (kill(0, sig)).
# Started at home, the job's session and group are its home shell's,
# outside its tree: a guest restored it in roamd's own, and it stopped
# that node's roamd ("signal 2: leaving the cluster"). A job that arrives
# on a guest leads a session of its own, as one started there does.
bg_start tmo "$ROAM" run --on n1 -- timeout -s INT 3 sh -c 'while :; do sleep 0.1; done'
P=$(bg_pid tmo)
wait_until 10 where_is "n1:$P" n1 >/dev/null
ok=0
for to in n3 n2; do migrate "n1:$P" "$to" >/dev/null 2>>"$DATA/tmo.mig" && ok=$((ok + 1)); sleep 0.3; done
group=$(cx n2 -- ps -o pgid=,sid= -p "$P" | tr -s ' ' | sed 's/^ //')
rc=$(bg_rc tmo 20)
states=$(nodes_json n1 | jq -r '[.nodes[].state] | join(" ")')
check "timeout started at home, moved n3, n2 ($ok of 2; then its group and session on n2: '$group', want '$P $P'), fires: status 124 ($rc), every node still alive ($states) $(head -c 200 "$DATA/tmo.mig")" \
  sh -c "[ $ok = 2 ] && [ '$group' = '$P $P' ] && [ '$rc' = 124 ] && [ '$states' = 'alive alive alive alive' ]"

# POSIX shared memory (/dev/shm) is every node's own: it goes with the job
# that uses it (Python's multiprocessing.shared_memory here, a child
# writing into it while it moves), and leaves no copy where it was.
cat >"$DATA/shm.py" <<'PY'
from multiprocessing import shared_memory, Process
import struct, sys, time
def child(name):
    s = shared_memory.SharedMemory(name=name)
    for i in range(150):
        struct.pack_into("q", s.buf, 8, i)
        time.sleep(0.02)
    s.close()
if __name__ == "__main__":
    s = shared_memory.SharedMemory(create=True, size=1 << 20, name="roamtest-psm")
    s.buf[100:105] = b"hello"
    p = Process(target=child, args=(s.name,)); p.start(); p.join()
    again = shared_memory.SharedMemory(name=s.name)  # by its name, where it ended
    print("last", struct.unpack_from("q", again.buf, 8)[0], bytes(again.buf[100:105]).decode())
    again.close(); s.close(); s.unlink()
PY
shm_here() { cx "$1" -- test -e /dev/shm/roamtest-psm && echo yes || echo no; }
bg_start psm "$ROAM" run --on n2 -- python3 "$DATA/shm.py"
P=$(bg_pid psm)
wait_until 10 sh -c "[ \$('$ROAM' cluster exec --name $CLUSTER n2 -- sh -c 'test -e /dev/shm/roamtest-psm && echo y') = y ]" >/dev/null
sleep 0.3
ok=0 placed=""
for to in n3 home n2; do
  migrate "n1:$P" "$to" >/dev/null 2>>"$DATA/psm.mig" && ok=$((ok + 1))
  [ "$to" = n3 ] && placed="n2:$(shm_here n2) n3:$(shm_here n3)"
  sleep 0.3
done
rc=$(bg_rc psm 30)
left="$(shm_here n1)$(shm_here n2)$(shm_here n3)"
check "a job using POSIX shared memory moved n3, home, n2 ($ok of 3; after the first, '$placed', want 'n2:no n3:yes'): '$(cat "$DATA/psm.out")' (want 'last 149 hello'), status $rc, none left on n1-n3 ($left) $(head -c 200 "$DATA/psm.mig")" \
  sh -c "[ $ok = 3 ] && [ '$placed' = 'n2:no n3:yes' ] && [ '$(cat "$DATA/psm.out")' = 'last 149 hello' ] && [ '$rc' = 0 ] && [ '$left' = nonono ]"
# One object used by two jobs cannot be in two places: CANTMOVE says shm
# and a move is refused naming the other; alone, it moves. An object of
# that name on the target (someone else's) refuses the move too.
hold_shm() { echo "import mmap, os, time; fd = os.open('/dev/shm/$1', os.O_RDWR | os.O_CREAT, 0o600); os.ftruncate(fd, 4096); m = mmap.mmap(fd, 4096); time.sleep(60)"; }
bg_start shma "$ROAM" run --on n2 -- python3 -c "$(hold_shm roamtest-two)"
sleep 0.5
bg_start shmb "$ROAM" run --on n2 -- python3 -c "$(hold_shm roamtest-two)"
A=$(bg_pid shma) B=$(bg_pid shmb)
wait_until 10 cantmove_is "n1:$A" shm >/dev/null
check "roam ps CANTMOVE of a job sharing /dev/shm/roamtest-two with another: '$(ps_field "n1:$A" cantmove)' (want shm)" \
  [ "$(ps_field "n1:$A" cantmove)" = shm ]
refused "POSIX shared memory another job uses" "/dev/shm/roamtest-two is shared with pid $B" migrate "n1:$A" n3
cx n1 -- "$ROAM" kill -s KILL "n1:$B" >/dev/null
wait_until 10 cantmove_is "n1:$A" "" >/dev/null  # no reason left
cx n3 -- sh -c 'echo theirs >/dev/shm/roamtest-two'
refused "POSIX shared memory whose name the target has" "/dev/shm/roamtest-two exists on n3 already" migrate "n1:$A" n3
cx n3 -- rm -f /dev/shm/roamtest-two
migrate "n1:$A" n3 >/dev/null 2>"$DATA/shma.mig"
where=$(ps_field "n1:$A" where)
on_n2=$(cx n2 -- ls /dev/shm | tr '\n' ' ') on_n3=$(cx n3 -- ls /dev/shm | tr '\n' ' ')
check "alone, it moves to n3 ('$where'), its object with it (n2 holds '$on_n2', n3 '$on_n3') $(head -c 200 "$DATA/shma.mig")" \
  sh -c "[ '$where' = n3 ] && [ '$on_n2' = '' ] && [ '$on_n3' = 'roamtest-two ' ]"
cx n1 -- "$ROAM" kill -s KILL "n1:$A" >/dev/null

# --- 3b. a server waiting for clients moves, and is reached where it runs -------
# python3 -m http.server listening on every address: after each move the
# node it reached serves the file, and the node it left refuses.
mkdir -p "$DATA/www"
head -c 200000 /dev/urandom >"$DATA/www/blob"
addr_of() { cx "$1" -- hostname -I | awk '{print $1}'; }
get_from() {  # get_from NODE: GET /blob from NODE's address, from n1, compared
  cx n1 -- python3 -c 'import sys, urllib.request
sys.stdout.buffer.write(urllib.request.urlopen("http://%s:8765/blob" % sys.argv[1], timeout=5).read())' \
    "$(addr_of "$1")" >"$DATA/got" 2>/dev/null && cmp -s "$DATA/got" "$DATA/www/blob"
}
bg_start httpd "$ROAM" run --on n2 -- python3 -m http.server --bind 0.0.0.0 8765 --directory "$DATA/www"
P=$(bg_pid httpd)
wait_until 10 where_is "n1:$P" n2 >/dev/null
served=""
wait_until 10 get_from n2 >/dev/null && served+="n2 "
for to in n3 home; do
  if migrate "n1:$P" "$to" >/dev/null 2>>"$DATA/httpd.mig"; then
    node=$to; [ "$to" = home ] && node=n1
    wait_until 10 get_from "$node" >/dev/null && served+="$node "
  fi
done
left=yes; get_from n3 && left=no
check "a listening server moved n2 -> n3 -> home is served where it runs (served by: ${served:-none}; $(head -c 300 "$DATA/httpd.mig")), and not by the node it left ($left)" \
  test "$served" = "n2 n3 n1 " -a "$left" = yes
cx n1 -- "$ROAM" kill "n1:$P" >/dev/null 2>&1
bg_rc httpd 20 >/dev/null
# The same server fetched from without pause wherever it runs (a client on
# n2 and one on n3, each on its own node's loopback): it always has a client
# waiting, which refused moves (kBusy). Its ports are held while it takes
# them (it has no address of its own), so each move goes.
bg_start httpl "$ROAM" run --on n2 -- python3 -m http.server --bind 0.0.0.0 8766 --directory "$DATA/www"
P=$(bg_pid httpl)
wait_until 10 where_is "n1:$P" n2 >/dev/null
loaders=()
for n in n2 n3; do
  cx $n -- python3 -c 'import time, urllib.request
end = time.time() + 9
while time.time() < end:
    try: urllib.request.urlopen("http://127.0.0.1:8766/blob", timeout=3).read()
    except Exception: time.sleep(0.01)' >/dev/null 2>&1 &
  loaders+=($!)
done
sleep 1
ok=0
for to in n3 n2 n3; do migrate "n1:$P" "$to" >/dev/null 2>>"$DATA/httpl.mig" && ok=$((ok + 1)); sleep 1; done
check "a server without an address of its own, fetched from without pause, moved n3, n2, n3 ($ok of 3; $(head -c 300 "$DATA/httpl.mig"))" [ "$ok" = 3 ]
wait "${loaders[@]}"
cx n1 -- "$ROAM" kill "n1:$P" >/dev/null 2>&1
bg_rc httpl 20 >/dev/null

# --- 3c. a TCP connection does not move (its address stays), and goes on -------
# An echo server on n2 with a client at home talking to it: the move to n3
# is refused with the reason (the connection's address is n2's), and the
# connection, held still for the dump (TCP_REPAIR, nftables), goes on.
cat >"$DATA/echo_srv.py" <<'PY'
import socket
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("0.0.0.0", 9123)); l.listen(1)
c, _ = l.accept()
while True:
    b = c.recv(4096)
    if not b: break
    c.sendall(b)
PY
cat >"$DATA/echo_cli.py" <<'PY'
import socket, sys, time
s = socket.create_connection((sys.argv[1], 9123)); s.settimeout(10)
for i in range(int(sys.argv[2])):
    m = ("%08d\n" % i).encode(); s.sendall(m)
    got = b""
    while len(got) < len(m): got += s.recv(len(m) - len(got))
    assert got == m, (got, m)
    time.sleep(0.01)
print("echoed", sys.argv[2])
PY
bg_start echosrv "$ROAM" run --on n2 -- python3 "$DATA/echo_srv.py"
P=$(bg_pid echosrv)
wait_until 10 where_is "n1:$P" n2 >/dev/null
n2_addr=$(addr_of n2)
cx n1 -- python3 "$DATA/echo_cli.py" "$n2_addr" 500 >"$DATA/echo_cli.out" 2>&1 &
client=$!
for _ in $(seq 50); do [ "$(ps_field "n1:$P" cantmove)" = socket ] && break; sleep 0.2; done  # connected
why=$(migrate "n1:$P" n3 2>&1); rc=$?
wait "$client"; client_rc=$?
ok=no
if [ $rc -ne 0 ] && grep -q "is not this node" <<<"$why" && [ $client_rc = 0 ] && grep -q "echoed 500" "$DATA/echo_cli.out"; then ok=yes; fi
check "a TCP connection: the move is refused (rc $rc: $why), and the connection goes on (client rc $client_rc: $(head -c 200 "$DATA/echo_cli.out"))" \
  test $ok = yes
bg_rc echosrv 20 >/dev/null
rm -f "$DATA"/*.ref "$DATA"/*.out "$DATA/big.txt"

# --- 3a. zombies: children exited and not waited for go with their parent --------
cat >"$DATA/zombies.py" <<'PY'
import os, sys, time
kids = []
for code in (3, 4):
    p = os.fork()
    if p == 0:
        os._exit(code)
    os.waitid(os.P_PID, p, os.WEXITED | os.WNOWAIT)  # a zombie now
    kids.append(p)
print("ready", flush=True)
time.sleep(float(sys.argv[1]))
for p in kids:
    got, st = os.waitpid(p, 0)
    print("child", got == p, os.WEXITSTATUS(st), flush=True)
PY
zombies_move() {  # zombies_move NAME USER [PREFIX...]: as root, or as a user who may not choose PIDs
  local name=$1 user=$2; shift 2
  bg_start "$name" "$@" "$ROAM" run --on n2 -- python3 "$DATA/zombies.py" 5
  local zp; zp=$(bg_pid "$name")
  wait_until 10 grep -q ready "$DATA/$name.out" >/dev/null
  local moved=0 to
  for to in n3 home n4; do migrate "n1:$zp" "$to" >/dev/null 2>>"$DATA/$name.mig" && moved=$((moved + 1)); done
  local rc; rc=$(bg_rc "$name" 30)
  check "$user's parent with two zombie children moved n3, home, n4 ($moved of 3, exit $rc): it waits for them and gets 3 and 4 ($(tr '\n' '|' <"$DATA/$name.out") $(head -c 200 "$DATA/$name.mig"))" \
    sh -c "[ $moved = 3 ] && [ '$rc' = 0 ] && grep -qx 'child True 3' '$DATA/$name.out' && grep -qx 'child True 4' '$DATA/$name.out'"
}
zombies_move zombies root
zombies_move zombiesnobody nobody setpriv --reuid=65534 --regid=65534 --clear-groups

# --- 3b. threads: a process with threads leaves home, moves and comes back -------
# Its threads meet at a barrier twice a round (futex waits all the time);
# the output is the same whatever the interleaving
# (tests/data/programs/threads_barrier.py).
cp "$HERE/../data/programs/threads_barrier.py" "$DATA/threads.py"
cx n1 -- python3 "$DATA/threads.py" 1500 3000 >"$DATA/threads.ref" </dev/null
# 1500 rounds: ~6 s here, so that it outlives four moves and the looks
# between them (600 rounds, 2.5 s, once ended before its last two).
threads_move() {  # threads_move NAME USER [PREFIX...]: started at home, as root or as a user
  local name=$1 user=$2; shift 2
  bg_start "$name" "$@" "$ROAM" run --on n1 -- python3 "$DATA/threads.py" 1500 3000
  local tp; tp=$(bg_pid "$name")
  wait_until 10 grep -q threads "$DATA/$name.out" >/dev/null
  local moved=0 to nthreads=()
  for to in n3 n4 home n2; do
    migrate "n1:$tp" "$to" >/dev/null 2>>"$DATA/$name.mig" && moved=$((moved + 1))
    nthreads+=("$(cx "$(ps_field "n1:$tp" where)" -- awk '/^Threads:/ {print $2}' "/proc/$tp/status" 2>/dev/null)")
    sleep 0.2
  done
  local rc; rc=$(bg_rc "$name" 120)
  check "$user's process with 3 threads moved n3, n4, home, n2 ($moved of 4, threads after each: ${nthreads[*]}, exit $rc): output identical to an undisturbed run ($(head -c 300 "$DATA/$name.mig"))" \
    sh -c "[ $moved = 4 ] && [ '$rc' = 0 ] && [ '${nthreads[*]}' = '4 4 4 4' ] && cmp -s '$DATA/threads.ref' '$DATA/$name.out'"
}
threads_move threads root
threads_move threadsnobody nobody setpriv --reuid=65534 --regid=65534 --clear-groups

# --- 3c. memfd: a sealed in-memory file, read through its fd and mapped ----------
cat >"$DATA/memfd.py" <<'PY'
import fcntl, hashlib, mmap, os, time
fd = os.memfd_create("roam-test", os.MFD_ALLOW_SEALING)
os.write(fd, b"hello memfd " * 1000)
fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK)
m = mmap.mmap(fd, 8192, mmap.MAP_SHARED)
os.lseek(fd, 100, 0)
print("ready", flush=True)
for i in range(30):
    m[i * 100:i * 100 + 4] = b"%04d" % i
    time.sleep(0.1)
print(os.readlink("/proc/self/fd/%d" % fd), os.lseek(fd, 0, 1), fcntl.fcntl(fd, fcntl.F_GET_SEALS), os.fstat(fd).st_size)
os.lseek(fd, 0, 0)
print(hashlib.sha256(os.read(fd, 20000)).hexdigest()[:16])
PY
# nobody_moves NAME WHAT: $DATA/NAME.py (which prints "ready" once set up)
# run undisturbed at home, then as nobody placed at home and moved n3,
# home, n2 mid-run: the same output, exit 0.
nobody_moves() {
  local name=$1 what=$2
  cx n1 -- python3 "$DATA/$name.py" >"$DATA/$name.ref" </dev/null
  bg_start "$name" setpriv --reuid=65534 --regid=65534 --clear-groups "$ROAM" run --on n1 -- python3 "$DATA/$name.py"
  local p; p=$(bg_pid "$name")
  wait_until 10 grep -q ready "$DATA/$name.out" >/dev/null
  local moved=0 to
  for to in n3 home n2; do migrate "n1:$p" "$to" >/dev/null 2>>"$DATA/$name.mig" && moved=$((moved + 1)); sleep 0.2; done
  local rc; rc=$(bg_rc "$name" 60)
  check "nobody's $what moved n3, home, n2 ($moved of 3, exit $rc): output as undisturbed ($(tail -2 "$DATA/$name.out" | tr '\n' ' ') $(head -c 200 "$DATA/$name.mig"))" \
    sh -c "[ $moved = 3 ] && [ '$rc' = 0 ] && cmp -s '$DATA/$name.ref' '$DATA/$name.out'"
}
nobody_moves memfd "memfd (sealed, at offset 100, mapped shared and written; its name, offset, seals, size and contents printed)"

# File locks on files every node sees (the shared directory): a flock and
# a POSIX range lock are still the job's after moves out of home, between
# guests and home again (ckpt/file_locks.h). A process of its own that
# holds none checks: neither can be taken while the job holds them, both
# once it let them go. Until 2026-12-06 the engine ignored locks: after a
# move the job ran on without them.
touch "$DATA/a.lock" "$DATA/b.lock"
chmod 666 "$DATA/a.lock" "$DATA/b.lock"
cat >"$DATA/locks.py" <<PY
import fcntl, struct, subprocess, sys, time
d = "$DATA"
a = open(d + "/a.lock", "r+")
fcntl.flock(a, fcntl.LOCK_EX)
b = open(d + "/b.lock", "r+")
fcntl.lockf(b, fcntl.LOCK_EX, 10, 10)  # bytes 10-19
print("ready", flush=True)
time.sleep(5)
probe = """
import fcntl, struct, sys
d = sys.argv[1]
try:
    fcntl.flock(open(d + "/a.lock", "r+"), fcntl.LOCK_EX | fcntl.LOCK_NB)
    print("flock free")
except BlockingIOError:
    print("flock held")
got = fcntl.fcntl(open(d + "/b.lock", "r+"), fcntl.F_GETLK, struct.pack("hhqqi", fcntl.F_WRLCK, 0, 15, 1, 0))
print("range", "held" if struct.unpack("hhqqi", got)[0] == fcntl.F_WRLCK else "free")
"""
print(subprocess.run([sys.executable, "-c", probe, d], capture_output=True, text=True).stdout, end="")
fcntl.flock(a, fcntl.LOCK_UN)
fcntl.lockf(b, fcntl.LOCK_UN, 10, 10)
print(subprocess.run([sys.executable, "-c", probe, d], capture_output=True, text=True).stdout, end="")
PY
nobody_moves locks "flock and POSIX lock on shared files (held after the moves, free once let go)"
check "undisturbed, the lock job saw its locks held, then free ($(tr '\n' ' ' <"$DATA/locks.ref"))" \
  sh -c "[ \"\$(tr '\n' ' ' <'$DATA/locks.ref')\" = 'ready flock held range held flock free range free ' ]"
# The same lock wanted by another process all along: flock(1) holds it for
# a job moved n3, home, n2 while a loop on n1 tries to take it every 5 ms.
# The target takes it once the source's copy is dead, the process held
# until it has it, so every move goes through (a move home waited for the
# lock its own source held, forever, in a first cut) and the job ends whole.
bg_start flockjob "$ROAM" run --on n2 -- flock "$DATA/w.lock" python3 -c 'import time
for i in range(40): print(i, flush=True); time.sleep(0.1)'
FJ=$(bg_pid flockjob)
wait_until 10 where_is "n1:$FJ" n2 >/dev/null
cx n1 -- sh -c "end=\$((\$(date +%s) + 4)); while [ \$(date +%s) -lt \$end ]; do flock -n '$DATA/w.lock' sleep 0.1 && echo got; sleep 0.005; done" >"$DATA/stealer.out" 2>&1 &
STEALER=$!
moved=0
for to in n3 home n2; do CX_LIMIT=20 migrate "n1:$FJ" "$to" >/dev/null 2>>"$DATA/flockjob.mig" && moved=$((moved + 1)); sleep 0.3; done
rc=$(bg_rc flockjob 30)
wait $STEALER
check "a job holding a lock another process wants, moved n3, home, n2: $moved of 3, exit $rc, every line ($(wc -l <"$DATA/flockjob.out") lines; the other took it $(grep -c got "$DATA/stealer.out") times) $(head -c 200 "$DATA/flockjob.mig")" \
  sh -c "[ $moved = 3 ] && [ '$rc' = 0 ] && [ \"\$(tr '\n' ' ' <'$DATA/flockjob.out')\" = '$(seq 0 39 | tr '\n' ' ')' ]"

# --- 3d. a socketpair: Python multiprocessing's duplex Pipe to a worker -----------
cat >"$DATA/mppipe.py" <<'PY'
import hashlib, multiprocessing as mp, time
def worker(conn):
    while True:
        msg = conn.recv()
        if msg is None:
            break
        conn.send(hashlib.sha256(msg).hexdigest()[:12])
if __name__ == "__main__":
    a, b = mp.Pipe(duplex=True)
    p = mp.Process(target=worker, args=(b,))
    p.start()
    print("ready", flush=True)
    h = b"seed"
    for i in range(40):
        a.send(h * 1000)
        h = a.recv().encode()
        time.sleep(0.05)
    a.send(None)
    p.join()
    print(h.decode(), p.exitcode)
PY
nobody_moves mppipe "Python talking to its multiprocessing worker over a socketpair"

# A -t job started without a terminal (stdin /dev/null): the end of its
# input sits in its pty as ^D; it goes as the end of input, and the job
# comes home (where its stdin is /dev/null again) and leaves.
bg_start ttynull "$ROAM" run -t --on n2 -- sh -c 'sleep 4; test -t 1 && echo pty || echo no-terminal'
tp=$(bg_pid ttynull)
wait_until 10 where_is "n1:$tp" n2 >/dev/null
moved=0
for to in n3 home n4; do migrate "n1:$tp" "$to" >/dev/null 2>>"$DATA/ttynull.mig" && moved=$((moved + 1)); done
rc=$(bg_rc ttynull 30)
check "a -t job without a terminal at home moved n3, home, n4 ($moved of 3, exit $rc, ended on '$(tr -d '\r\n' <"$DATA/ttynull.out")') $(head -c 200 "$DATA/ttynull.mig")" \
  sh -c "[ $moved = 3 ] && [ '$rc' = 0 ] && grep -q '^pty' '$DATA/ttynull.out'"

# --- 3b. pre-copy: a process rewriting its memory while it is moved ----------------
# 48 MiB of pages, each stamped with its number and a generation; every
# ~1 ms it rewrites 20 random pages (its own table of generations lives in
# its heap), and every 500 rounds it checks all of them and prints how many
# are wrong. A page the move lost, took stale or zeroed shows there, and in
# the final hash, which must equal an undisturbed run's (run at the same
# time at home).
cat >"$DATA/rewrite.py" <<'PY'
import sys, hashlib, time
N = int(sys.argv[1]) * 256
buf = bytearray(N * 4096)
gen = [0] * N
for i in range(N):
    buf[i*4096:i*4096+8] = (i << 32).to_bytes(8, 'little')
x, bad = 99, 0
for it in range(int(sys.argv[2])):
    for k in range(20):
        x = (x * 6364136223846793005 + 1442695040888963407) & ((1 << 64) - 1)
        i = (x >> 17) % N
        gen[i] += 1
        buf[i*4096 + (gen[i] % 500) * 8:i*4096 + (gen[i] % 500) * 8 + 8] = x.to_bytes(8, 'little')
        buf[i*4096:i*4096+8] = ((i << 32) | gen[i]).to_bytes(8, 'little')
    if it % 500 == 0:
        bad += sum(1 for i in range(N) if int.from_bytes(buf[i*4096:i*4096+8], 'little') != ((i << 32) | gen[i]))
        print(it, "bad", bad, flush=True)
    time.sleep(0.001)
print("end bad", bad, hashlib.sha256(buf).hexdigest(), flush=True)
PY
cx n1 -- bash -c 'python3 "$1" 48 7000 >"$2"' _ "$DATA/rewrite.py" "$DATA/rewrite.ref" </dev/null &
ref_pid=$!
# precopy_moves NAME: moves the job NAME (started on n2) to n3, home and n2;
# pc_ok counts the moves that pre-copied (2 rounds or more, over 40 MB sent
# while it ran; coming home too, into its deputy), pc_figs their figures.
precopy_moves() {
  local p j to
  p=$(bg_pid "$1")
  wait_until 10 where_is "n1:$p" n2 >/dev/null
  sleep 1
  pc_ok=0 pc_figs=()
  for to in n3 home n2; do
    if j=$(migrate "n1:$p" "$to" --json 2>>"$DATA/$1.mig"); then
      pc_figs+=("$(jq -c '[.from, .to, .rounds, .frozen_ms, (.precopy_bytes / 1048576 | floor)]' <<<"$j")")
      if [ "$(jq '.rounds >= 2 and .precopy_bytes > 40000000' <<<"$j")" = true ]; then pc_ok=$((pc_ok + 1)); fi
    fi
    sleep 0.5
  done
}
bg_start rewrite "$ROAM" run --on n2 -- python3 "$DATA/rewrite.py" 48 7000
precopy_moves rewrite
rc=$(bg_rc rewrite 120)
wait "$ref_pid"
check "pre-copy: a process rewriting 48 MiB moved n3, home, n2 ($pc_ok of 3 as expected: ${pc_figs[*]} [from,to,rounds,frozen ms,MiB while it ran]) $(head -c 200 "$DATA/rewrite.mig")" [ "$pc_ok" -eq 3 ]
check "pre-copy: no page lost or stale, exit $rc, output identical to an undisturbed run ($(tail -1 "$DATA/rewrite.out" | cut -c1-40))" \
  sh -c "[ '$rc' = 0 ] && grep -q '^end bad 0 ' '$DATA/rewrite.out' && cmp -s '$DATA/rewrite.ref' '$DATA/rewrite.out'"

# The same writer under a shell, in a pipeline: the memory is the root's
# child's (sh -> python3 | cat). Every process of a tree is pre-copied, so
# each move must carry more than 40 MB while it runs (only the child has
# that much), and the child must come out right: staged in the root seed
# and handed to it at its fork, on a guest (n3) and in the deputy at home.
bg_start rewtree "$ROAM" run --on n2 -- sh -c 'python3 "$0" 48 7000 | cat' "$DATA/rewrite.py"
precopy_moves rewtree
rc=$(bg_rc rewtree 120)
check "pre-copy of a tree: sh -c 'python3 | cat' moved n3, home, n2 with the child's memory sent while it ran ($pc_ok of 3: ${pc_figs[*]}) $(head -c 200 "$DATA/rewtree.mig")" [ "$pc_ok" -eq 3 ]
check "pre-copy of a tree: the child lost no page, exit $rc, output identical to an undisturbed run ($(tail -1 "$DATA/rewtree.out" | cut -c1-40))" \
  sh -c "[ '$rc' = 0 ] && grep -q '^end bad 0 ' '$DATA/rewtree.out' && cmp -s '$DATA/rewrite.ref' '$DATA/rewtree.out'"

# --- 4. refusals, each with its reason --------------------------------------------
bg_start idle "$ROAM" run --on n2 -- python3 "$DATA/count.py" 100000 0.01
P=$(bg_pid idle)
G=n1:$P
wait_until 10 where_is "$G" n2 >/dev/null
refused "already there" "already runs on n2" migrate "$G" n2
refused "unknown node" "no node named n9" migrate "$G" n9
refused "bad GPID" "bad GPID" migrate "n1-$P" n3
refused "not the owner" "belongs to another user" cx n1 -- setpriv --reuid=65534 --regid=65534 --clear-groups "$ROAM" migrate "$G" n3
refused "not the owner, asked from another node" "belongs to another user" \
  cx n3 -- setpriv --reuid=65534 --regid=65534 --clear-groups "$ROAM" migrate "$G" n3
cx n3 -- "$ROAM" node block >/dev/null
wait_until 10 sh -c "'$ROAM' cluster exec --name $CLUSTER n1 -- '$ROAM' nodes --json | jq -e '.nodes[] | select(.name==\"n3\") | .blocked'" >/dev/null
refused "blocked target" "refuses guests (blocked)" migrate "$G" n3
cx n3 -- "$ROAM" node unblock >/dev/null
# n4 has a 160 MiB memory limit: a process using ~200 MiB does not fit.
bg_start fat "$ROAM" run --on n2 -- python3 -c 'import time; b = bytearray(200 << 20); b[::4096] = b"x" * len(b[::4096]); time.sleep(60)'
FP=$(bg_pid fat)
wait_until 10 sh -c "[ \$('$ROAM' cluster exec --name $CLUSTER n1 -- '$ROAM' ps --json | jq '[.processes[] | select(.gpid==\"n1:$FP\") | .rss_bytes] | first // 0') -gt 200000000 ]" >/dev/null
refused "a target without room" "has no room" migrate "n1:$FP" n4
cx n1 -- "$ROAM" kill -s KILL "n1:$FP" >/dev/null
# A file the process holds open exists only on its node (private /tmp).
bg_start tmpf "$ROAM" run --on n2 -- sh -c 'echo x >/tmp/only-here; exec python3 -c "import time; f = open(\"/tmp/only-here\"); time.sleep(60)"'
TP=$(bg_pid tmpf)
sleep 1.5
refused "a file missing on the target" "only-here" migrate "n1:$TP" n3
check "after the refused move the process still runs on n2, once" [ "$(copies "$TP" python3)" = 1 ]
cx n1 -- "$ROAM" kill -s KILL "n1:$TP" >/dev/null
# A socket the engine does not carry (netlink): CANTMOVE says so in roam
# ps, and a move, asked twice in a row, names the engine's reason (the
# source's, not "lost the link" from the target it gave up on) and finds
# the PID free on the target again.
bg_start sock "$ROAM" run --on n2 -- python3 -c 'import socket, time; s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW); time.sleep(60)'
SP=$(bg_pid sock)
wait_until 10 cantmove_is "n1:$SP" socket >/dev/null
check "roam ps CANTMOVE of a process holding a netlink socket: '$(ps_field "n1:$SP" cantmove)' (want socket)" \
  [ "$(ps_field "n1:$SP" cantmove)" = socket ]
refused "a socket" "sockets of family 16,.*not supported" migrate "n1:$SP" n3
refused "a socket, asked again at once" "sockets of family 16,.*not supported" migrate "n1:$SP" n3
check "after the refused moves it still runs on n2, once" [ "$(copies "$SP" python3)" = 1 ]
cx n1 -- "$ROAM" kill -s KILL "n1:$SP" >/dev/null
# A pipe the job inherited from outside it (its writer is no descendant of
# the job), at fd 3 of a job at home: CANTMOVE says pipe (it said nothing,
# and the balancer tried it in vain), and a move names the engine's reason.
bg_start hp bash -c 'sleep 60 | "$0" run --on n1 -- sh -c "exec 3<&0 </dev/null; exec sleep 60"' "$ROAM"
HG=
for _ in $(seq 50); do
  HG=$(cx n1 -- "$ROAM" ps --json | jq -r '[.processes[] | select(.command | test("exec 3<&0"))][0].gpid // empty')
  [ -n "$HG" ] && cantmove_is "$HG" pipe && break
  sleep 0.2
done
check "roam ps CANTMOVE of a job at home holding a pipe from outside it at fd 3: '$(ps_field "$HG" cantmove)' (want pipe)" \
  [ "$(ps_field "$HG" cantmove)" = pipe ]
refused "a pipe to outside the job" "pipe to a process outside" migrate "$HG" n3
cx n1 -- "$ROAM" kill -s KILL "$HG" >/dev/null
# The same path on both nodes, but not the same file: refused before any freeze.
cx n3 -- sh -c 'echo longer-here >/tmp/differs'
bg_start diff "$ROAM" run --on n2 -- sh -c 'echo x >/tmp/differs; exec python3 -c "import time; f = open(\"/tmp/differs\"); time.sleep(60)"'
DP=$(bg_pid diff)
sleep 1.5
refused "a file that differs on the target" "/tmp/differs differs on n3 (size 2 at the source, 12 here)" migrate "n1:$DP" n3
cx n1 -- "$ROAM" kill -s KILL "n1:$DP" >/dev/null
# "best" asks the next node when the best one refuses for a reason of its
# own (here a file that is not there): n3, made the fastest, lacks
# /tmp/pick; n4 has the very same file (size and mtime).
for n in n2 n4; do cx $n -- sh -c 'echo pick >/tmp/pick && touch -d @1700000000 /tmp/pick'; done
cx n3 -- rm -f /tmp/pick
cx n3 -- "$ROAM" node speed 1000000 >/dev/null
wait_until 15 sh -c "[ \$('$ROAM' cluster exec --name $CLUSTER n1 -- '$ROAM' nodes --json | jq '.nodes[] | select(.name==\"n3\") | .speed') = 1000000 ]" >/dev/null
bg_start pick "$ROAM" run --on n2 -- python3 -c 'import time; f = open("/tmp/pick"); time.sleep(60)'
KP=$(bg_pid pick)
wait_until 10 where_is "n1:$KP" n2 >/dev/null
sleep 1
out=$(cx n1 -- "$ROAM" migrate --json "n1:$KP" best 2>&1)
check "best: n3 (fastest) refuses for want of /tmp/pick, n4 takes it ($(printf '%s' "$out" | jq -c '{from,to}' 2>/dev/null || echo "$out"))" \
  sh -c "printf '%s' '$out' | jq -e '.to == \"n4\"' >/dev/null"
check "best: roam ps then says n4" where_is "n1:$KP" n4
cx n3 -- "$ROAM" node speed 0 >/dev/null
cx n1 -- "$ROAM" kill -s KILL "n1:$KP" >/dev/null
# On a terminal, `roam migrate` shows how far the move has come (a line
# rewritten in place), then its one result line.
bg_start big "$ROAM" run --on n2 -- python3 -c 'import os, time; b = bytearray(os.urandom(384 << 20)); print("ready", flush=True); time.sleep(60)'
BP=$(bg_pid big)
wait_until 30 grep -q ready "$DATA/big.out" >/dev/null
script -qec "timeout 120 '$ROAM' cluster exec --name $CLUSTER n1 -- '$ROAM' migrate n1:$BP n3" /dev/null >"$DATA/progress.tty" 2>&1
check "on a terminal, progress is shown while it moves ($(tr '\r' '\n' <"$DATA/progress.tty" | grep -a 'MiB sent' | head -2 | tr '\n' '|' | cut -c1-160))" \
  sh -c "tr '\r' '\n' <'$DATA/progress.tty' | grep -aq 'n1:$BP n2 -> n3: .* MiB sent' && grep -aq 'n1:$BP moved n2 -> n3' '$DATA/progress.tty'"
cx n1 -- "$ROAM" kill -s KILL "n1:$BP" >/dev/null
# At home: locked, or placed there.
bg_start locked "$ROAM" run --lock -- sleep 30
LP=$(bg_pid locked)
wait_until 10 where_is "n1:$LP" n1 >/dev/null
refused "a locked process" "locked" migrate "n1:$LP" n2
cx n1 -- kill "$LP"

# --- 5a. lock, and mosctl's verbs on any node -------------------------------------
cx n3 -- "$ROAM" lock "$G" >/dev/null
check "roam lock from n3 shows LOCK in roam ps at home" [ "$(ps_field "$G" lock)" = true ]
refused "locked with roam lock" "is locked" migrate "$G" n3
cx n3 -- "$ROAM" unlock "$G" >/dev/null
check "roam unlock lets it move again" sh -c "'$ROAM' cluster exec --name $CLUSTER n1 -- '$ROAM' migrate '$G' n3 >/dev/null"
blocked_seen() {  # blocked_seen OBSERVER NODE FIELD: NODE's FIELD (blocked/draining) is true in OBSERVER's view
  cx "$1" -- "$ROAM" nodes --json | jq -e --arg n "$2" --arg f "$3" '.nodes[] | select(.name == $n) | .[$f]' >/dev/null
}
cx n1 -- "$ROAM" node block n4 >/dev/null
# The node that forwarded the verb takes n4's vector from the reply.
check "roam node block n4, asked on n1: n1 shows n4 blocked at once" blocked_seen n1 n4 blocked
t=$(wait_until 10 blocked_seen n2 n4 blocked) && pass "roam node block n4, asked on n1: n2 sees n4 blocked after ${t}s" ||
  fail "n4 never seen blocked"
refused "a target blocked from another node" "refuses guests (blocked)" migrate "$G" n4
cx n1 -- "$ROAM" node unblock n4 >/dev/null
wait_until 10 sh -c "! '$ROAM' cluster exec --name $CLUSTER n1 -- '$ROAM' nodes --json | jq -e '.nodes[] | select(.name == \"n4\") | .blocked' >/dev/null" >/dev/null
bg_start ex1 "$ROAM" run --on n3 -- sh -c "exec $(count_cmd ex1)"
E1=$(bg_pid ex1)
wait_until 10 where_is "n1:$E1" n3 >/dev/null
out=$(cx n2 -- "$ROAM" node expel n3 2>&1); rc=$?
w1=$(ps_field "n1:$E1" where) w2=$(ps_field "$G" where)
check "roam node expel n3, asked on n2: exit $rc, n1:$E1 now on $w1, $G now on $w2 ($(tr '\n' ' ' <<<"$out"))" \
  sh -c "[ $rc -eq 0 ] && [ '$w1' != n3 ] && [ '$w2' != n3 ] && [ -n '$w1' ]"
count_end ex1
seen=$SEEN rc=$RC
check "the expelled job's output is complete and in order (exit $rc, $(wc -l <"$DATA/ex1.out") lines, past $seen)" \
  bash -c "[ '$rc' = 0 ] && lines_past '$DATA/ex1.out' $seen"
# A job whose root exited while its background child writes on (a remnant)
# cannot move: the drain names it (exit 1) and leaves it running.
bg_start rem "$ROAM" run --on "$w2" -- sh -c "(while [ ! -e '$DATA/rem.go' ]; do sleep 0.1; done; echo late) & echo early"
R=$(bg_pid rem)
rc_rem=$(bg_rc rem 30)
cx n1 -- "$ROAM" node drain "$w2" >"$DATA/drain.out" 2>&1; rc=$?
t=$(wait_until 10 blocked_seen n1 "$w2" draining) || t=never
w3=$(ps_field "$G" where)
check "roam node drain $w2: exit $rc, $G moved to $w3, n1 sees $w2 draining (after ${t}s), the remnant n1:$R (root's exit $rc_rem) named as left there ($(tr '\n' ' ' <"$DATA/drain.out"))" \
  sh -c "[ $rc -eq 1 ] && [ '$w3' != '$w2' ] && [ '$t' != never ] && [ '$rc_rem' = 0 ] &&
         grep -q 'n1:$R: has exited; what it left running in the background stays on $w2 until its output ends' '$DATA/drain.out'"
touch "$DATA/rem.go"
t=$(wait_until 10 grep -qx late "$DATA/rem.out") || t=never
check "the remnant the drain left on $w2 still writes home (after ${t}s: $(tr '\n' ' ' <"$DATA/rem.out"))" \
  sh -c "[ '$t' != never ] && printf 'early\nlate\n' | cmp -s - '$DATA/rem.out'"
refused "roam run --on a draining node" "refuses guests" cx n1 -- "$ROAM" run --on "$w2" -- true
cx n1 -- "$ROAM" node unblock "$w2" >/dev/null
# Its own word decides, not the last load vector n1 holds (a second old).
out=$(cx n1 -- "$ROAM" run --on "$w2" -- echo ok 2>&1); rc=$?
check "roam run --on $w2 at once after roam node unblock $w2: it runs (exit $rc, '$out')" \
  sh -c "[ $rc -eq 0 ] && [ '$out' = ok ]"
wait_until 10 sh -c "! '$ROAM' cluster exec --name $CLUSTER n1 -- '$ROAM' nodes --json | jq -e '.nodes[] | select(.name == \"$w2\") | .blocked' >/dev/null" >/dev/null
bg_start br1 "$ROAM" run --on n3 -- sh -c "exec $(count_cmd br1)"
B1=$(bg_pid br1)
wait_until 10 where_is "n1:$B1" n3 >/dev/null
out=$(cx n2 -- "$ROAM" node bring n1 2>&1); rc=$?
wb=$(ps_field "n1:$B1" where) wg=$(ps_field "$G" where)
check "roam node bring n1, asked on n2: exit $rc, n1:$B1 and $G are home ($wb, $wg) ($(tr '\n' ' ' <<<"$out"))" \
  sh -c "[ $rc -eq 0 ] && [ '$wb' = n1 ] && [ '$wg' = n1 ]"
count_end br1
seen=$SEEN rc=$RC
check "the job brought home ends with all its lines once, in order (exit $rc, $(wc -l <"$DATA/br1.out") lines, past $seen)" \
  bash -c "[ '$rc' = 0 ] && lines_past '$DATA/br1.out' $seen"
refused "roam node expel as a user" "needs root" cx n1 -- setpriv --reuid=65534 --regid=65534 --clear-groups "$ROAM" node expel n2
cx n1 -- "$ROAM" kill -s KILL "$G" >/dev/null

# --- 5. faults at every phase: exactly one copy, complete output ------------------
# fault_case NAME NODE "PHASE ACTION" OUTCOME [TO]: a counting job on n2 is
# moved to TO (n4, or home) while the fault fires; OUTCOME is where it must
# end up (n2: it resumed at the source, its deputy at home; TO: the move went
# through; lost: it died with its node).
fault_case() {
  local name=$1 node=$2 spec=$3 outcome=$4 to=${5:-n4}
  # A roamd restarted by the case before may still be suspected for a
  # moment (CI runs other suites beside this one): start on a quiet cluster.
  wait_until 20 all_see n2 alive n1 n3 n4 >/dev/null
  wait_until 20 all_see n4 alive n1 n2 n3 >/dev/null
  bg_start "$name" "$ROAM" run --on n2 -- sh -c "exec $(count_cmd "$name")"
  local p; p=$(bg_pid "$name")
  wait_until 10 where_is "n1:$p" n2 >/dev/null
  sleep 0.5
  fault "$node" "$spec"
  local out rc; out=$(migrate "n1:$p" "$to" 2>&1); rc=$?
  local seen; seen=$(wc -l <"$DATA/$name.out")
  sleep 0.5
  local where; where=$(ps_field "n1:$p" where)
  local n; n=$(copies "$p" python3)
  local comm; comm=$(cx n1 -- ps -o comm= -p "$p" 2>/dev/null | tr -d ' ')
  count_stop "$name"
  local jrc; jrc=$(bg_rc "$name" 60)
  case $outcome in
    lost)
      check "fault '$spec' on $node: the process died with its node: roam run exits 255 ('$(head -c 120 "$DATA/$name.err")'), no copy left" \
        sh -c "[ '$jrc' = 255 ] && [ $(copies "$p" python3) -eq 0 ]"
      ;;
    *)
      # Came home: no copy on a guest, the process itself at home.
      local want_rc=0 want_n=1 want_comm=roam
      [ "$outcome" = n2 ] && want_rc=1
      [ "$outcome" = n1 ] && want_n=0 want_comm=python3
      check "moving to $to, fault '$spec' on $node: migrate rc $rc ('$out'), then on $where, $n cop(ies) on guests, $comm at home, exit $jrc $(head -c 200 "$DATA/$name.err"), every line once, in order, $(wc -l <"$DATA/$name.out") (past $seen)" \
        bash -c "[ $rc -eq $want_rc ] && [ '$where' = $outcome ] && [ $n -eq $want_n ] && [ '$comm' = $want_comm ] && [ '$jrc' = 0 ] && lines_past '$DATA/$name.out' $seen"
      ;;
  esac
  if [ "${spec##* }" = die ]; then restart_roamd "$node" || fail "roamd on $node did not come back"; fi
}
fault_case f_src_frozen n2 "source-frozen cut" n2
fault_case f_src_stream n2 "source-streaming cut" n2
fault_case f_tgt_recv_die n4 "target-receiving die" n2
fault_case f_tgt_restored n4 "target-restored cut" n2
fault_case f_tgt_restored_die n4 "target-restored die" n2
fault_case f_src_handed_die n2 "source-handed die" n4
fault_case f_tgt_go_die n4 "target-go die" lost
fault_case f_src_frozen_die n2 "source-frozen die" lost
# During pre-copy (the counting job uses ~7 MiB: it is pre-copied).
fault_case f_pc_src_cut n2 "source-precopy cut" n2
fault_case f_pc_tgt_cut n4 "target-staging cut" n2
fault_case f_pc_tgt_die n4 "target-staging die" n2
fault_case f_pc_src_die n2 "source-precopy die" lost

# --- 6a. leaving home: a process placed at home moves out, and on ----------------
bg_start homejob "$ROAM" run --on n1 -- sh -c "exec $(count_cmd homejob)"
P=$(bg_pid homejob)
wait_until 10 where_is "n1:$P" n1 >/dev/null
sleep 0.5
j=$(migrate "n1:$P" n2 --json 2>&1); rc=$?
deputy=$(cx n1 -- ps -o comm= -p "$P" 2>/dev/null | tr -d ' ')
check "a process at home leaves for n2 (rc $rc: $(jq -c '{from,to,total_ms,frozen_ms}' <<<"$j" 2>/dev/null || echo "$j")); its PID at home is now its deputy ($deputy)" \
  sh -c "[ $rc -eq 0 ] && [ '$deputy' = roam ] && [ '$(ps_field "n1:$P" where)' = n2 ]"
j=$(migrate "n1:$P" home --json 2>&1); rc=$?
comm=$(cx n1 -- ps -o comm= -p "$P" 2>/dev/null | tr -d ' ')
check "it comes back home (rc $rc: $(jq -c '{from,to,total_ms,frozen_ms}' <<<"$j" 2>/dev/null || echo "$j")): its PID at home is $comm again, roam ps says $(ps_field "n1:$P" where)" \
  sh -c "[ $rc -eq 0 ] && [ '$comm' = python3 ] && [ '$(ps_field "n1:$P" where)' = n1 ] && [ $(copies "$P" python3) -eq 0 ]"
check "it leaves home again, for n3" sh -c "'$ROAM' cluster exec --name $CLUSTER n1 -- '$ROAM' migrate n1:$P n3 >/dev/null"
count_end homejob
seen=$SEEN rc=$RC
check "after leaving home and moving on: exit $rc, every line once and in order ($(wc -l <"$DATA/homejob.out"), past $seen)" \
  bash -c "[ '$rc' = 0 ] && lines_past '$DATA/homejob.out' $seen"
# home_job NAME CMD...: `roam run --on n1 -- CMD...` as background job
# NAME; sets P once it runs at home.
home_job() {
  local name=$1; shift
  bg_start "$name" "$ROAM" run --on n1 -- "$@"
  P=$(bg_pid "$name")
  wait_until 10 where_is "n1:$P" n1 >/dev/null
}
# move_route NAME TO...: moves job NAME (n1:$P) to each TO in turn, 0.3 s
# apart; OK gets how many moves went, NAME.mig what the others said.
move_route() {
  local name=$1 to; shift
  OK=0
  for to in "$@"; do migrate "n1:$P" "$to" >/dev/null 2>>"$DATA/$name.mig" && OK=$((OK + 1)); sleep 0.3; done
}
# program_route NAME PROGRAM ARG TO...: tests/data/programs/PROGRAM
# (python3) with ARG started at home as job NAME, moved to each TO while it
# runs (move_route: OK), then waited for: RC its exit status.
program_route() {
  local name=$1 program=$2 arg=$3
  shift 3
  cp "$HERE/../data/programs/$program" "$DATA/$program"
  home_job "$name" python3 "$DATA/$program" "$arg"
  sleep 0.5
  move_route "$name" "$@"
  RC=$(bg_rc "$name" 60)
}
# route_check NAME WHAT TO...: count_cmd job NAME (n1:$P) moved to each TO,
# then let print 0.5 s more and stopped: every move went, exit 0, every
# line once, in order.
route_check() {
  local name=$1 what=$2; shift 2
  sleep 0.3
  move_route "$name" "$@"
  count_end "$name"
  local seen=$SEEN rc=$RC ok=$OK
  check "$what, moved $*: $ok of $# $(head -c 200 "$DATA/$name.mig"), exit $rc, every line once, in order ($(wc -l <"$DATA/$name.out"), past $seen)" \
    bash -c "[ $ok = $# ] && [ '$rc' = 0 ] && lines_past '$DATA/$name.out' $seen"
}
# A process that closed its stdin and stderr leaves home, comes back and
# leaves again: the deputy it execs finds fds 0 and 2 closed, and must not
# let its own socket take fd 0, where it relays stdin from (it did: a line
# lost, then "roam run went away" and the process killed on its guest).
home_job closedio sh -c "exec 0<&- 2>&-; exec $(count_cmd closedio)"
route_check closedio "stdin and stderr closed" n3 home n4
# An interval timer ticking into a handler, and signals waiting blocked
# (tests/data/programs/timer_signals.py): it leaves home, fails to come
# home after its rebuild there (an injected fault), comes home, leaves
# again. An exec keeps both, and the deputy it becomes is a new program:
# until 2026-12-07 it died of the timer's first SIGALRM (the process lost:
# "its deputy did not connect in 10 s") or of a queued real-time signal.
cp "$HERE/../data/programs/timer_signals.py" "$DATA/timer_signals.py"
home_job timersig python3 "$DATA/timer_signals.py" 8
sleep 0.5
ok=0 faulted=no
migrate "n1:$P" n2 >/dev/null 2>>"$DATA/timersig.mig" && ok=1
fault n1 "target-restored cut"
migrate "n1:$P" home 2>&1 | grep -q 'injected fault' && faulted=yes
move_route timersig home n3
ok=$((${ok:-0} + OK))
rc=$(bg_rc timersig 60)
inorder=no; awk '$1 == "line" && $2 != ++n {exit 1} END {exit n < 20}' "$DATA/timersig.out" && inorder=yes
check "a timer ticking and signals queued: out of home, home failed after its rebuild ($faulted), home, out: $ok of 3 $(head -c 300 "$DATA/timersig.mig"); exit $rc, '$(tail -1 "$DATA/timersig.out")', lines once and in order: $inorder" \
  sh -c "[ $ok = 3 ] && [ $faulted = yes ] && [ '$rc' = 0 ] && [ $inorder = yes ]"
# Pseudo-terminal pairs inside the tree (src/ckpt/file_pty.cc): `script`
# running the counting job on a pty of its own, moved out of home, between
# guests and home; and a dialogue over a pty (tests/data/programs/
# pty_dialog.py: lines typed, some in halves, some ahead, each answered in
# order by a child in the mode it set), moved while it talks. Until
# 2026-12-07 refused: "a pseudo-terminal's master (/dev/ptmx) is not
# supported".
home_job ptyscript sh -c "script -qfec \"$(count_cmd ptyscript)\" /dev/null | tr -d '\\r'"
route_check ptyscript "script: a pty pair in the tree" n2 n3 home n4
program_route ptydialog pty_dialog.py 6 n3 home n2 n4
check "a dialogue over a pty pair, moved n3, home, n2, n4 while it talks: $OK of 4 $(head -c 300 "$DATA/ptydialog.mig"); exit $RC, '$(tail -1 "$DATA/ptydialog.out")'" \
  sh -c "[ $OK = 4 ] && [ '$RC' = 0 ] && tail -1 '$DATA/ptydialog.out' | grep -q '^done '"
# A job whose working directory was removed under it (a run directory
# cleaned away) moves out of home, between guests and home: each node makes
# the directory again at its path, puts the job in it and removes it.
# Until 2026-12-07 refused: "its working directory ... (deleted) is not
# supported". (/usr/bin/python3: a pyenv shim cannot start in it.)
home_job cwdgone sh -c "mkdir '$DATA/gone' && cd '$DATA/gone' && rmdir '$DATA/gone' && exec /usr/bin/$(count_cmd cwdgone)"
route_check cwdgone "its working directory removed" n2 n3 home n4
check "no directory is left where the removed one was" sh -c "[ ! -e '$DATA/gone' ]"
# Children waited for through pidfds in an epoll set (tests/data/programs/
# pidfd_children.py: asyncio's PidfdChildWatcher), moved out of home,
# between guests and home while they come and go: each ends once, with its
# status, in order. Until 2026-12-07 refused: "pidfd is not supported".
program_route pidfds pidfd_children.py 40 n3 home n2 n4
check "children waited for through pidfds, moved n3, home, n2, n4: $OK of 4 $(head -c 300 "$DATA/pidfds.mig"); exit $RC, '$(tail -1 "$DATA/pidfds.out")'" \
  sh -c "[ $OK = 4 ] && [ '$RC' = 0 ] && awk '\$1 != NR - 1 && \$1 != \"done\" {exit 1} \$1 != \"done\" && (\$3 != \$1 || \$5 != \$1 % 7) {exit 1}' '$DATA/pidfds.out' && tail -1 '$DATA/pidfds.out' | grep -qx 'done 40'"
# A job stopped at home (SIGSTOP to its PID) stays stopped through moves
# out, on, home and out again, and goes on after SIGCONT. Until 2026-12-07
# the SIGCONT the engine sends to seize a stopped process stayed pending
# in the deputy it became, which passed it on: it ran on the guest.
home_job stopped sh -c "exec $(count_cmd stopped)"
sleep 0.5
cx n1 -- kill -STOP "$P"
sleep 0.3
before=$(wc -l <"$DATA/stopped.out") ok=0 ran=""
for to in n2 n3 home n4; do
  migrate "n1:$P" "$to" >/dev/null 2>>"$DATA/stopped.mig" && ok=$((ok + 1))
  sleep 0.4
  ran="$ran $(($(wc -l <"$DATA/stopped.out") - before))"
done
cx n1 -- "$ROAM" kill -s CONT "n1:$P" >/dev/null
sleep 0.5
count_end stopped
seen=$SEEN rc=$RC
check "stopped at home, moved n2, n3, home, n4: $ok of 4 $(head -c 200 "$DATA/stopped.mig"); lines printed after each move:$ran (want 0); after SIGCONT exit $rc, every line once, in order ($(wc -l <"$DATA/stopped.out"), past $seen)" \
  bash -c "[ $ok = 4 ] && [ '$ran' = ' 0 0 0 0' ] && [ '$rc' = 0 ] && lines_past '$DATA/stopped.out' $seen"
# A job that lowered its fd limit (ulimit -n) leaves home: the deputy it
# becomes needs a few fds of its own. Until 2026-12-07 it died at its first
# pipe ("roam run: pipe2: Too many open files") and the job was lost. A
# soft limit is raised for the deputy; a hard one roamd may not raise (no
# CAP_SYS_RESOURCE, as root on this VM) refuses the move at once, and the
# job runs on at home.
# (The job lowers its limit itself, once started: fds the test's own
# environment passes down may already take 5.)
cat >"$DATA/lowfd.py" <<'PY'
import resource, runpy, sys
soft, hard = int(sys.argv[1]), int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard if hard > 0 else resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
sys.argv = sys.argv[3:]
runpy.run_path(sys.argv[0], run_name="__main__")
PY
lowfd_cmd() { count_cmd "$1" | sed "s|^python3 |python3 '$DATA/lowfd.py' 5 $2 |"; }
home_job lownofile sh -c "exec $(lowfd_cmd lownofile 0)"
route_check lownofile "a soft fd limit of 5" n2 home n3
home_job hardnofile sh -c "exec $(lowfd_cmd hardnofile 5)"
sleep 0.3
if [ $(( 0x$(awk '/CapEff/ {print $2}' /proc/self/status) >> 24 & 1 )) = 0 ]; then
  refused "a job whose hard fd limit is 5, leaving home without CAP_SYS_RESOURCE" "may open 5 files at most (ulimit -n), its deputy needs 16" migrate "n1:$P" n2
  want=n1
else
  check "a job whose hard fd limit is 5 leaves home (roamd holds CAP_SYS_RESOURCE)" migrate "n1:$P" n2
  want=n2
fi
where=$(ps_field "n1:$P" where)
count_end hardnofile
seen=$SEEN rc=$RC
check "then it ran on at $want ($where): exit $rc, every line once, in order ($(wc -l <"$DATA/hardnofile.out"), past $seen)" \
  bash -c "[ '$where' = $want ] && [ '$rc' = 0 ] && lines_past '$DATA/hardnofile.out' $seen"
# Faults while leaving home (the target's roamd dies after restoring; the
# home cuts the link during pre-copy; the target dies while staging): the
# process runs on at home, untouched.
for spec in "n4 target-restored die" "n1 source-precopy cut" "n4 target-staging die"; do
  set -- $spec
  name=homefault_${3}_$2
  bg_start "$name" "$ROAM" run --on n1 -- sh -c "exec $(count_cmd "$name")"
  P=$(bg_pid "$name")
  wait_until 10 where_is "n1:$P" n1 >/dev/null
  fault "$1" "$2 $3"
  out=$(migrate "n1:$P" n4 2>&1); rc=$?
  seen=$(wc -l <"$DATA/$name.out")
  sleep 0.5
  comm=$(cx n1 -- ps -o comm= -p "$P" 2>/dev/null | tr -d ' ')
  count_stop "$name"
  jrc=$(bg_rc "$name" 60)
  check "fault '$2 $3' on $1 while leaving home: rc $rc ('$out'), it ran on at home as $comm, exit $jrc, every line once, in order, $(wc -l <"$DATA/$name.out") (past $seen)" \
    bash -c "[ $rc -ne 0 ] && [ '$comm' = python3 ] && [ '$jrc' = 0 ] && lines_past '$DATA/$name.out' $seen"
  if [ "$3" = die ]; then restart_roamd "$1" || fail "roamd on $1 did not come back"; fi
done

# --- 6b. coming home: what cannot, and faults -------------------------------------
# Trees: a shell pipeline (sh; python3 | cat, a pipe inside the tree) moved
# home, out and home again, as root (the deputy's seed makes the other
# processes with clone3 set_tid) and as user nobody (it may not: the home
# roamd sets ns_last_pid for each, src/ckpt/restore.h).
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
children_at_home() { cx n1 -- ps -o user=,comm= --ppid "$1" | sort | tr -s ' \n' '  '; }
tree_home() {  # tree_home NAME USER [PREFIX...]
  local name=$1 user=$2; shift 2
  bg_start "$name" "$@" "$ROAM" run --on n2 -- sh -c "$(count_cmd "$name") | cat"
  local p; p=$(bg_pid "$name")
  wait_until 10 where_is "n1:$p" n2 >/dev/null
  sleep 0.5
  local ok=0 kids="" to
  for to in home n3 home; do
    migrate "n1:$p" "$to" >/dev/null 2>>"$DATA/$name.mig" && ok=$((ok + 1))
    [ -z "$kids" ] && kids=$(children_at_home "$p")
    sleep 0.3
  done
  local seen; seen=$(wc -l <"$DATA/$name.out")
  sleep 0.5
  count_stop "$name"
  local rc; rc=$(bg_rc "$name" 60)
  check "$name: a pipeline (sh; python3 | cat) of $user moved home, n3, home: $ok of 3 $(head -c 300 "$DATA/$name.mig"); at home first its children were [$kids]; exit $rc; every line once, in order, $(wc -l <"$DATA/$name.out") (past $seen)" \
    bash -c "[ $ok = 3 ] && [ '$kids' = '$user cat $user python3 ' ] && [ '$rc' = 0 ] && lines_past '$DATA/$name.out' $seen"
}
tree_home treeroot root
tree_home treenobody nobody "${NOBODY[@]}"
# The nobody tree's other PIDs, forked on n2, were made at home by asking
# n1's kernel for them (ns_last_pid); n1 must then count on in its own
# range, below n2's (roam cluster: node 2 of 4 starts at pid_max / 4), or
# its next jobs take PIDs that n2's processes may hold.
next_home=$(cx n1 -- "$ROAM" run --on n1 -- sh -c 'echo $$' </dev/null)
n2_first=$(( $(cx n2 -- cat /proc/sys/kernel/pid_max) / 4 ))
check "after a tree came home, the home's next job has a pid of its own range ($next_home, below $n2_first)" \
  sh -c "[ -n '$next_home' ] && [ '$next_home' -lt '$n2_first' ]"
# A fault after the tree was rebuilt at home: its other processes are killed
# and reaped there, the deputy is back, and the tree runs on at n2.
bg_start treefault "${NOBODY[@]}" "$ROAM" run --on n2 -- sh -c "$(count_cmd treefault) | cat"
P=$(bg_pid treefault)
wait_until 10 where_is "n1:$P" n2 >/dev/null
sleep 0.5
fault n1 "target-restored cut"
out=$(migrate "n1:$P" home 2>&1); rc=$?
sleep 0.3
kids=$(children_at_home "$P")
comm=$(cx n1 -- ps -o comm= -p "$P" 2>/dev/null | tr -d ' ')
where=$(ps_field "n1:$P" where)
count_end treefault
seen=$SEEN jrc=$RC
faulted=no; grep -q 'injected fault' <<<"$out" && faulted=yes
check "a tree, fault 'target-restored cut' at home: migrate rc $rc ('$out'), then on $where, children at home [$kids], $comm at home, exit $jrc, every line once, in order, $(wc -l <"$DATA/treefault.out") (past $seen)" \
  bash -c "[ $rc = 1 ] && [ $faulted = yes ] && [ '$where' = n2 ] && [ -z '$kids' ] && [ '$comm' = roam ] && [ '$jrc' = 0 ] && lines_past '$DATA/treefault.out' $seen"
# A PID of the tree taken at home: refused before anything is frozen for
# good; the tree runs on at n2.
bg_start treetaken "$ROAM" run --on n2 -- sh -c 'sleep 30 | cat'
P=$(bg_pid treetaken)
wait_until 10 where_is "n1:$P" n2 >/dev/null
sleep 0.5
kid=$(cx n2 -- pgrep -P "$P" sleep)
taker=$(cx n1 -- sh -c "echo $((${kid:-2} - 1)) >/proc/sys/kernel/ns_last_pid; sleep 60 </dev/null >/dev/null 2>&1 & echo \$!")
cx n1 -- sh -c 'echo 30000 >/proc/sys/kernel/ns_last_pid'
check "a process at home holds pid $kid of the tree's sleep (it got $taker)" [ "$taker" = "$kid" ]
refused "a tree whose pid $kid is taken at home" "pid $kid of its tree is taken here" migrate "n1:$P" home
check "after the refusal the tree runs on n2, once" [ "$(copies "$P" sh)" = 1 ]
cx n1 -- kill "$taker" 2>/dev/null
cx n1 -- "$ROAM" kill -s KILL "n1:$P" >/dev/null
head -c 300000 /dev/zero >"$DATA/unread.txt"
bg_start unread --in "$DATA/unread.txt" "$ROAM" run --on n2 -- python3 -c 'import time; time.sleep(30)'
P=$(bg_pid unread)
wait_until 10 where_is "n1:$P" n2 >/dev/null
sleep 1
refused "a process with input it has not read, coming home" "input it has not read yet" migrate "n1:$P" home
check "after the refusal it runs on n2, once, its deputy at home" \
  sh -c "[ $(copies "$P" python3) = 1 ] && [ \"\$('$ROAM' cluster exec --name $CLUSTER n1 -- ps -o comm= -p $P | tr -d ' ')\" = roam ]"
cx n1 -- "$ROAM" kill -s KILL "n1:$P" >/dev/null
# Coming home (n1 is the home; outcome n1: it came home all the same).
fault_case hf_recv n1 "target-receiving cut" n2 home
fault_case hf_rebuilt n1 "target-restored cut" n2 home
fault_case hf_src_stream n2 "source-streaming cut" n2 home
fault_case hf_src_handed n2 "source-handed die" n1 home
fault_case hf_staging n1 "target-staging cut" n2 home
fault_case hf_src_precopy n2 "source-precopy cut" n2 home

# --- 6. the user's shell: $!, wait, kill %1 and $? across moves ------------------
out=$(CX_LIMIT=120 cx n1 -- bash -c '
  set -m
  R=$1; D=$2
  "$R" run --on n2 -- sh -c "sleep 2; exit 7" </dev/null &
  p=$!
  sleep 0.5; "$R" migrate n1:$p n3 >/dev/null || echo MOVEFAIL
  wait $p; echo "exit=$?"
  "$R" run --on n2 -- python3 "$D/count.py" 100000 0.01 </dev/null >/dev/null &
  sleep 0.8; "$R" migrate n1:$! n4 >/dev/null || echo MOVEFAIL
  kill %1; wait %1; echo "killed=$?"
  "$R" run --on n2 -- python3 -c "import time, sys; time.sleep(2); sys.exit(5)" </dev/null &
  p=$!
  sleep 0.5; "$R" migrate n1:$p home >/dev/null || echo MOVEFAIL
  wait $p; echo "came_home_exit=$?"
  "$R" run --on n2 -- python3 "$D/count.py" 100000 0.01 </dev/null >/dev/null &
  sleep 0.8; "$R" migrate n1:$! home >/dev/null || echo MOVEFAIL
  kill %1; wait %1; echo "came_home_killed=$?"
  close_extra_fds
  "$R" run --on n1 -- sh -c "sleep 2; exit 9" </dev/null &
  p=$!
  sleep 0.5; "$R" migrate n1:$p n2 >/dev/null || echo MOVEFAIL
  wait $p; echo "home_exit=$?"
  "$R" run --on n1 -- python3 "$D/count.py" 100000 0.01 </dev/null >/dev/null &
  sleep 0.8; "$R" migrate n1:$! n3 >/dev/null || echo MOVEFAIL
  kill %1; wait %1; echo "home_killed=$?"
' _ "$ROAM" "$DATA" 2>&1)
check "shell: wait \$! after a move gives 7 (5 after coming home, 9 after leaving home), kill %1 after a move gives 143 (also after coming home and after leaving home) ($(tr '\n' ' ' <<<"$out"))" \
  bash -c 'grep -qx "exit=7" <<<"$1" && grep -qx "killed=143" <<<"$1" && grep -qx "came_home_exit=5" <<<"$1" && grep -qx "came_home_killed=143" <<<"$1" && grep -qx "home_exit=9" <<<"$1" && grep -qx "home_killed=143" <<<"$1" && ! grep -q MOVEFAIL <<<"$1"' _ "$out"
# A move refused here was seen once in six runs (2026-12-04: "restore
# failed: ...: process N: fd 1 of an unknown file", leaving home) and not
# reproduced since: the nodes' logs say more the next time.
if grep -q MOVEFAIL <<<"$out"; then
  for n in n1 n2 n3 n4; do echo "--- $n: the end of roamd.log"; cx "$n" -- tail -n 20 /run/roam/roamd.log; done
fi

# --- 7. a user at a terminal: a real bash -i with job control --------------------
# Ctrl-Z, a move while stopped, fg; a job coming home, then Ctrl-Z and fg
# natively; Ctrl-C after home and back out; a -t job (tty_job.py) moved
# between guests, home and out with a line being typed and one typed ahead
# (tests/integration/tty_shell.py).
cp "$HERE/tty_job.py" "$DATA/"
out=$(CX_LIMIT=300 cx n1 -- python3 "$HERE/tty_shell.py" "$ROAM" "$DATA" 2>&1)
while IFS= read -r l; do
  case $l in
    OK\ *) pass "terminal: ${l#OK }" ;;
    FAIL\ *) fail "terminal: ${l#FAIL }" ;;
  esac
done <<<"$out"
check "the terminal session went through all its 36 steps ($(grep -c '^OK' <<<"$out") OK)" \
  [ "$(grep -c '^OK' <<<"$out")" -eq 36 ]

# --- 8. nothing left behind ----------------------------------------------------------
# Every move above opened sessions on the node links (adopt, move_in, the
# home's orders); once the processes are gone, none may be left open.
sessions_closed() {
  local n j
  for n in n1 n2 n3 n4; do
    j=$(cx "$n" -- "$ROAM" nodes --json) || return 1
    jq -e '.counters.link_sessions == 0' <<<"$j" >/dev/null || return 1
  done
}
left=$(cx n1 -- "$ROAM" ps --all 2>&1 | tail -n +2 | cut -c1-120 | tr '\n' '|')
check "no process is left anywhere after the moves (${left:-none})" test -z "$left"
check "no session is left open on any node's links ($(for n in n1 n2 n3 n4; do cx $n -- "$ROAM" nodes --json | jq -c --arg n $n '.counters | {($n): [.links, .link_sessions]}'; done | tr '\n' ' ')[links, sessions])" \
  wait_until 20 sessions_closed

finish
