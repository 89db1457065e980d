#!/usr/bin/env bash
# The home node on a real 4-node `roam cluster`: `roam run` gives back the
# remote command's exit status and death signal, relays stdin, stdout and
# stderr byte-exact and with flow control, passes signals, keeps the PID,
# runs as the caller; `roam ps` shows where each process is; `roam kill`
# works from any node for the owner only; a dead, blocked or unknown target
# and a guest that dies under a running process end roam run with 255.
#
# Needs root. Every `roam run` is started inside n1 (its home). Destructive
# checks (a dead node, a crashed guest roamd) come last. No command may hang
# the test: each `cx` is cut off after CX_LIMIT seconds (then exit 124).
set -u
source "$(dirname "$0")/lib.sh"
CLUSTER=trun
NODES=(n1 n2 n3 n4)
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
DATA=$(mktemp -d /var/tmp/roam-it-run.XXXXXX)  # not /tmp: each node has its own
BG_PIDS=()
cleanup() {
  "$ROAM" cluster down --name $CLUSTER >/dev/null 2>&1
  local p
  for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$DATA"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
CX_LIMIT=60
# cx NODE -- CMD... as in lib.sh, but never longer than CX_LIMIT seconds.
cx() { timeout -k 5 "$CX_LIMIT" "$ROAM" cluster exec --name "$CLUSTER" "$@"; }
cd /  # the caller's cwd must exist on the target, also for user nobody
T0=$(now_ms)
secs_since() { echo "$(( $(now_ms) - $1 ))" | awk '{printf "%.1f", $1/1000}'; }

# --- helpers -----------------------------------------------------------------

# bg_start NAME CMD...: runs CMD inside n1 in the background, in its own process
# group with default signal dispositions, stdin from /dev/null, stdout and
# stderr into $DATA/NAME.out and .err. $DATA/NAME.pid gets its PID (in n1),
# $DATA/NAME.rc its shell exit status once it has ended.
bg_start() {
  local name=$1; shift
  CX_LIMIT=120 cx n1 -- bash -c '
    set -m; d=$1; n=$2; shift 2
    "$@" </dev/null >"$d/$n.out" 2>"$d/$n.err" &
    p=$!
    echo $p >"$d/$n.pid.tmp" && mv "$d/$n.pid.tmp" "$d/$n.pid"
    wait $p
    echo $? >"$d/$n.rc.tmp" && mv "$d/$n.rc.tmp" "$d/$n.rc"
  ' _ "$DATA" "$name" "$@" 2>"$DATA/$name.sh.err" &
  BG_PIDS+=($!)
}
bg_pid() {  # bg_pid NAME: waits (10 s at most) for the PID of a bg_start job
  wait_until 10 test -s "$DATA/$1.pid" >/dev/null && cat "$DATA/$1.pid"
}
bg_rc() {  # bg_rc NAME SECONDS: waits for the job's exit status; "none" if still running
  if wait_until "$2" test -s "$DATA/$1.rc" >/dev/null; then cat "$DATA/$1.rc"; else echo none; fi
}

# ps_row NODE GPID [--all]: the JSON object of GPID in NODE's `roam ps --json`.
ps_row() {
  cx "$1" -- "$ROAM" ps ${3:-} --json 2>/dev/null | jq -c --arg g "$2" '.processes[] | select(.gpid == $g)'
}
ps_field() {  # ps_field NODE GPID FIELD [--all]
  cx "$1" -- "$ROAM" ps ${4:-} --json 2>/dev/null |
    jq -r --arg g "$2" --arg f "$3" '[.processes[] | select(.gpid == $g) | .[$f]] | if length == 0 then "" else (.[0] | tostring) end'
}
test_ps_state() { [ "$(ps_field "$1" "$2" state)" = "$3" ]; }  # test_ps_state NODE GPID STATE
ps_where_is() { [ "$(ps_field "$1" "$2" where)" = "$3" ]; }  # ps_where_is NODE GPID WHERE
ps_lacks() {  # ps_lacks NODE GPID: NODE's `roam ps --json` works and has no row for GPID
  local j; j=$(cx "$1" -- "$ROAM" ps --json 2>/dev/null) || return 1
  jq -e --arg g "$2" '[.processes[] | select(.gpid == $g)] | length == 0' <<<"$j" >/dev/null
}
comm_on() { cx "$1" -- ps -p "$2" -o comm= 2>/dev/null | tr -d ' '; }  # comm_on NODE PID
gone_on() { ! cx "$1" -- ps -p "$2" >/dev/null 2>&1; }                 # gone_on NODE PID
# gone_after SEEN NODE PID: PID, seen running on NODE before (SEEN=yes), is gone within 10 s.
gone_after() { [ "$1" = yes ] && wait_until 10 gone_on "$2" "$3" >/dev/null; }
seen() { if "$@" >/dev/null 2>&1; then echo yes; else echo no; fi; }  # seen CMD...: yes/no
comm_is() { [ "$(comm_on "$1" "$2")" = "$3" ]; }                        # comm_is NODE PID COMM
matches() { grep -Eq "$1" <<<"$2"; }                                    # matches REGEX TEXT
n3_accepts_guests_seen_by_n1() { [ "$(json_field n1 n3 accepts_guests)" = "$1" ]; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }  # host PID

errtext() { head -c 300 "$1" 2>/dev/null | tr '\n' '|'; }  # errtext FILE: for a report line
# kill_roamd NODE: kill -9 of NODE's roamd (never of pid 0, which is our own group).
kill_roamd() {
  local p; p=$(roamd_pid "$1")
  if [ "${p:-0}" -gt 1 ]; then kill -9 "$p"; else echo "  info: $1 has no roamd to kill"; return 1; fi
}
roamd_answers() { cx "$1" -- "$ROAM" nodes --json >/dev/null 2>&1; }  # roamd_answers NODE

# one_line_error FILE: FILE is exactly one line starting with "roam run: ".
one_line_error() { [ "$(wc -l <"$1")" -eq 1 ] && grep -q '^roam run: ' "$1"; }

# expect_refused NAME CMD...: CMD (run inside n1) exits 255 with one `roam run:` line.
expect_refused() {
  local name=$1; shift
  local rc
  cx n1 -- "$@" </dev/null >"$DATA/refused.out" 2>"$DATA/refused.err"; rc=$?
  local alive; alive=$(seen roamd_answers n1)
  if [ $rc -eq 255 ] && one_line_error "$DATA/refused.err" && [ "$alive" = yes ]; then
    pass "$name (\"$(head -c 200 "$DATA/refused.err")\")"
  else
    fail "$name: exit $rc, n1's roamd answers: $alive, stderr: $(errtext "$DATA/refused.err")"
  fi
}

# --- the cluster ---------------------------------------------------------------

"$ROAM" cluster down --name $CLUSTER >/dev/null 2>&1
if ! "$ROAM" cluster up --name $CLUSTER --nodes 4; then
  fail "cluster up"
  finish; exit 1
fi
if t=$(wait_until 30 full_mesh "${NODES[@]}"); then
  pass "4 nodes alive in each other's tables after ${t}s"
else
  fail "4 nodes never formed one membership"
  finish; exit 1
fi
balance_off "${NODES[@]}"  # where a process runs is checked here: only placement decides it

# --- 1. exit status and death signal come back ----------------------------------

for code in 0 3 255; do
  cx n1 -- "$ROAM" run --on n2 -- sh -c "exit $code" </dev/null 2>"$DATA/exit.err"; rc=$?
  if [ $rc -eq $code ] && [ ! -s "$DATA/exit.err" ]; then
    pass "roam run --on n2 -- sh -c 'exit $code' exits $code"
  else
    fail "roam run --on n2 -- sh -c 'exit $code': exit $rc (want $code), stderr: $(head -c 200 "$DATA/exit.err")"
  fi
done
out=$(cx n1 -- "$ROAM" run --on n2 -- sh -c 'echo last words; kill -9 $$' </dev/null 2>"$DATA/kill9.err"); rc=$?
check "a remote process killed by SIGKILL kills roam run with SIGKILL (exit $rc, want 137) $(errtext "$DATA/kill9.err")" test $rc -eq 137
check "what it wrote before SIGKILL arrives (got: $out)" test "$out" = "last words"

out=$(cx n1 -- "$ROAM" run --on n2 -- hostname </dev/null 2>&1)
check "roam run --on n2 runs on n2 (hostname: $out)" test "$out" = n2
out=$(cx n1 -- bash -c '"$1" run --on n2 -- sh -c "echo \$\$" </dev/null & p=$!; wait $p; echo $p' _ "$ROAM" 2>&1 | tr '\n' ' ')
read -r remote_pid home_pid _ <<<"$out"
check "the remote process's PID is roam run's PID at home ($remote_pid vs $home_pid)" \
  test -n "${home_pid:-}" -a "${remote_pid:-x}" = "${home_pid:-y}"

out=$(cx n1 -- bash -c 'cd "$1" && umask 027 && ulimit -n 777 && ROAM_IT_VAR=hello "$2" run --on n2 -- sh -c "echo \$ROAM_IT_VAR; pwd; umask; ulimit -n"' \
  _ "$DATA" "$ROAM" </dev/null 2>&1 | tr '\n' ' ')
check "env, cwd, umask and rlimits of the caller reach n2 (got: $out)" test "$out" = "hello $DATA 0027 777 "

cx n1 -- "$ROAM" run -- true </dev/null 2>"$DATA/best.err"; rc=$?
check "roam run -- true (default --best) exits 0 (exit $rc) $(errtext "$DATA/best.err")" test $rc -eq 0
out=$(cx n1 -- "$ROAM" run --best -- hostname </dev/null 2>&1)
check "roam run --best -- hostname runs on a node of the cluster (ran on: $out)" matches '^n[1-4]$' "$out"

# --- 2. stdio: byte-exact, separated, flow-controlled ----------------------------

head -c 200M /dev/urandom >"$DATA/big"
want=$(sha256sum <"$DATA/big" | cut -d' ' -f1)
start=$(now_ms)
cx n1 -- "$ROAM" run --on n2 -- cat "$DATA/big" </dev/null 2>"$DATA/out200.err" | sha256sum >"$DATA/out200.sum"
rc=${PIPESTATUS[0]}
t=$(secs_since "$start")
got=$(cut -d' ' -f1 "$DATA/out200.sum")
check "200 MiB of random stdout from n2 arrive with the same SHA-256 (exit $rc, ${t}s, $(awk -v t="$t" 'BEGIN{printf "%.0f", (t>0 ? 200/t : 0)}') MiB/s) $(errtext "$DATA/out200.err")" \
  test "$got" = "$want" -a "$rc" -eq 0

start=$(now_ms)
cx n1 -- "$ROAM" run --on n3 -- sha256sum <"$DATA/big" >"$DATA/in200.sum" 2>"$DATA/in200.err"; rc=$?
t=$(secs_since "$start")
got=$(cut -d' ' -f1 "$DATA/in200.sum")
check "200 MiB streamed into stdin of sha256sum on n3 hash the same (exit $rc, ${t}s) $(errtext "$DATA/in200.err")" test "$got" = "$want" -a $rc -eq 0

head -c 20M "$DATA/big" >"$DATA/mid"
want_mid=$(sha256sum <"$DATA/mid" | cut -d' ' -f1)
cx n1 -- "$ROAM" run --on n2 -- sh -c 'cat "$1"; kill -9 $$' _ "$DATA/mid" </dev/null 2>"$DATA/mid.err" | sha256sum >"$DATA/mid.sum"
rc=${PIPESTATUS[0]}
check "all 20 MiB written by a process that then dies of SIGKILL arrive before roam run dies (exit $rc, want 137) $(errtext "$DATA/mid.err")" \
  test "$(cut -d' ' -f1 "$DATA/mid.sum")" = "$want_mid" -a $rc -eq 137

cx n1 -- "$ROAM" run --on n2 -- sh -c 'echo out; echo err >&2' </dev/null >"$DATA/sep.out" 2>"$DATA/sep.err"
check "stdout and stderr of a remote process stay apart (out: $(cat "$DATA/sep.out" | tr '\n' '|') err: $(cat "$DATA/sep.err" | tr '\n' '|'))" \
  test "$(cat "$DATA/sep.out")" = out -a "$(cat "$DATA/sep.err")" = err

# Stdin and stderr closed by the caller (`<&- 2>&-`, as cron or a daemon
# may leave them): roam's own socket must not take fd 0, where the deputy
# relays stdin from (it used to: "lost the connection to roamd (malformed
# control message)", exit 255 after a few lines). A program placed at home
# finds them closed, as its caller left them.
cx n1 -- bash -c '"$1" run --on n2 -- seq 5000 <&- 2>&- >"$2"; echo $? >"$2.rc"' _ "$ROAM" "$DATA/closed.out"
check "roam run --on n2 with stdin and stderr closed: exit $(cat "$DATA/closed.out.rc"), $(wc -l <"$DATA/closed.out") of 5000 lines" \
  sh -c "[ \"\$(cat '$DATA/closed.out.rc')\" = 0 ] && seq 5000 | cmp -s - '$DATA/closed.out'"
out=$(cx n1 -- bash -c '"$1" run --on n1 -- sh -c "test -e /proc/self/fd/0 && echo 0open; test -e /proc/self/fd/2 && echo 2open; echo done" <&- 2>&-' _ "$ROAM")
check "placed at home with stdin and stderr closed, the program finds them closed (got: $(tr '\n' ' ' <<<"$out"))" test "$out" = done

# A reader that goes away: roam run and the remote writer end (as `yes | head` does).
start=$(now_ms)
out=$(CX_LIMIT=30 cx n1 -- bash -c '"$1" run --on n2 -- yes </dev/null 2>/dev/null | head -n 1' _ "$ROAM" 2>&1); rc=$?
t=$(secs_since "$start")
check "roam run --on n2 -- yes | head -n 1 prints y and ends when head goes away (exit $rc, ${t}s, bound 30 s)" test "$out" = y -a $rc -ne 124
check "no yes is left running on n2 after its reader went away" wait_until 10 bash -c "! '$ROAM' cluster exec --name $CLUSTER n2 -- pgrep -x yes"

# After all those runs: one connection per pair of nodes, reused, and no
# session left behind by any of them.
links_idle() {  # links_idle NODE MAX_LINKS: no session open, 1..MAX_LINKS links
  local j
  j=$(cx "$1" -- "$ROAM" nodes --json) || return 1
  jq -e --argjson max "$2" '.counters.link_sessions == 0 and .counters.links >= 1 and .counters.links <= $max' <<<"$j" >/dev/null
}
check "n1 keeps one link per peer after the remote runs, with no session left open ($(cx n1 -- "$ROAM" nodes --json | jq -c '.counters | {links, link_sessions}'))" \
  wait_until 10 links_idle n1 3
check "so does n2 ($(cx n2 -- "$ROAM" nodes --json | jq -c '.counters | {links, link_sessions}'))" wait_until 10 links_idle n2 3
tcp_links=$(cx n1 -- ss -Htn state established '( sport = :7946 or dport = :7946 )' | wc -l)
check "n1 has as many TCP connections on the link port as peers it talked to, not one per run ($tcp_links, at most 3)" \
  test "$tcp_links" -ge 1 -a "$tcp_links" -le 3

# A reader that never reads: the pipe fills, nothing may buffer without bound.
# Then SIGTERM to roam run must still reach the remote cat, and roam run dies
# of SIGTERM (at once, or once a second reader has drained what it holds).
CX_LIMIT=120 cx n1 -- bash -c '
  set -m; d=$1; roam=$2
  await() { for i in $(seq 600); do [ -e "$d/$1" ] && return; sleep 0.1; done; }
  mkfifo "$d/stall.fifo"
  sleep 300 <"$d/stall.fifo" & reader=$!
  "$roam" run --on n2 -- cat "$d/big" </dev/null >"$d/stall.fifo" 2>"$d/stall.err" & p=$!
  echo $p >"$d/stall.pid.tmp" && mv "$d/stall.pid.tmp" "$d/stall.pid"
  await stall.term; kill -TERM $p
  await stall.drain; cat "$d/stall.fifo" >/dev/null & drainer=$!
  for i in $(seq 200); do  # until it has ended (bash may have reaped it already)
    st=$(ps -o stat= -p $p); [ -z "$st" ] || [[ $st == Z* ]] && break; sleep 0.1
  done
  kill -KILL $p 2>/dev/null
  wait $p; echo $? >"$d/stall.rc.tmp" && mv "$d/stall.rc.tmp" "$d/stall.rc"
  kill $reader $drainer 2>/dev/null; wait
' _ "$DATA" "$ROAM" 2>"$DATA/stall.sh.err" &
BG_PIDS+=($!)
if stall_pid=$(bg_pid stall); then
  sleep 3
  rr1=$(cx n1 -- awk '/^VmRSS/ {print $2}' "/proc/$stall_pid/status" 2>/dev/null); d1a=$(rss_kb "$(roamd_pid n1)"); d2a=$(rss_kb "$(roamd_pid n2)")
  sleep 2
  rr2=$(cx n1 -- awk '/^VmRSS/ {print $2}' "/proc/$stall_pid/status" 2>/dev/null); d1b=$(rss_kb "$(roamd_pid n1)"); d2b=$(rss_kb "$(roamd_pid n2)")
  limit=65536
  max=0; for v in ${rr1:-0} ${rr2:-0} $d1a $d1b $d2a $d2b; do [ "$v" -gt $max ] && max=$v; done
  check "stalled stdout reader: memory stays bounded (VmRSS kB at 3 s / 5 s: roam run $rr1/$rr2, roamd n1 $d1a/$d1b, roamd n2 $d2a/$d2b; bound $limit)" \
    test -n "${rr2:-}" -a "$max" -lt $limit
  held=$(seen comm_is n2 "$stall_pid" cat)
  check "stalled stdout reader: the remote cat on n2 is held back, not finished" test $held = yes
  start=$(now_ms)
  touch "$DATA/stall.term"
  if gone_after $held n2 "$stall_pid"; then
    pass "SIGTERM to roam run while its stdout is stalled ends the remote cat on n2 after $(secs_since "$start")s"
  else
    fail "SIGTERM to roam run while its stdout is stalled: the remote cat on n2 is still there (or never was: $held)"
  fi
  touch "$DATA/stall.drain"
  rc=$(bg_rc stall 40)
  check "that roam run dies of SIGTERM (given a reader that drains its stdout) (exit $rc, want 143) $(errtext "$DATA/stall.err")" test "$rc" = 143
else
  fail "stalled stdout reader: roam run never started"
fi
touch "$DATA/stall.term" "$DATA/stall.drain"

# --- 3. a running remote process: ps, PID, signals, kill ----------------------------

bg_start sint "$ROAM" run --on n2 -- sleep 100
pid=$(bg_pid sint)
gpid="n1:${pid:-none}"
if t=$(wait_until 15 ps_where_is n1 "$gpid" n2); then
  pass "roam ps on n1 shows $gpid with where=n2 after ${t}s"
else
  fail "roam ps on n1 never showed $gpid where=n2 (row: $(ps_row n1 "$gpid"))"
fi
there=$(seen wait_until 5 comm_is n2 "${pid:-0}" sleep)
check "the remote sleep has roam run's PID $pid on n2 (comm there: $(comm_on n2 "${pid:-0}"))" test $there = yes
row=$(ps_row n1 "$gpid"); row=${row:-'{}'}
# state: the contract's example says running; the kernel's word for a sleep is sleeping.
fields=$(jq -r '[.home, .user, (.uid|tostring), (.state|IN("running","sleeping")|tostring), (.nmig|tostring), (.lock|tostring), .command] | join(",")' <<<"$row")
check "roam ps --json on n1 describes it: home n1, user root, uid 0, state running or sleeping, nmig 0, not locked, command 'sleep 100' ($row)" \
  test "$fields" = "n1,root,0,true,0,false,sleep 100"
check "roam ps --json has numeric cpu_percent, rss_bytes, time_seconds" \
  jq -e '(.cpu_percent|type) == "number" and (.rss_bytes|type) == "number" and (.time_seconds|type) == "number"' <<<"$row"
table=$(cx n1 -- "$ROAM" ps 2>&1)
check "the roam ps table has the documented header" \
  matches '^ *GPID +USER +HOME +WHERE +STATE +NMIG +LOCK +CANTMOVE +CPU% +RSS +TIME +COMMAND *$' "$table"
check "the roam ps table has a row for $gpid: root, home n1, where n2" matches "^ *$gpid +root +n1 +n2 " "$table"
check "roam ps --all --json on n3 lists $gpid where n2" test "$(ps_field n3 "$gpid" where --all)" = n2
check "roam ps (without --all) on n3 does not list n1's process" ps_lacks n3 "$gpid"

# Refusals below count only if roam kill exists and the roamds involved answer.
kill_exists=$(seen cx n1 -- "$ROAM" kill --help)
[ $kill_exists = yes ] && roamd_answers n1 && roamd_answers n4 || kill_exists=no
cx n4 -- "${NOBODY[@]}" "$ROAM" kill -s KILL "$gpid" </dev/null >/dev/null 2>"$DATA/nobodykill.err"; rc=$?
sleep 0.5
check "roam kill by nobody of root's $gpid is refused (exit $rc, roam kill exists and roamds answer: $kill_exists, \"$(errtext "$DATA/nobodykill.err")\")" \
  test $kill_exists = yes -a $rc -ne 0 -a -s "$DATA/nobodykill.err"
check "root's process still runs after nobody's roam kill (it ran before: $there)" test $there = yes -a "$(comm_on n2 "${pid:-0}")" = sleep
roamd_answers n1 || kill_exists=no
cx n1 -- "$ROAM" kill n1:3999999 </dev/null >/dev/null 2>"$DATA/unknownkill.err"; rc=$?
check "roam kill of an unknown GPID fails with a message (exit $rc, \"$(errtext "$DATA/unknownkill.err")\")" \
  test $kill_exists = yes -a $rc -ne 0 -a -s "$DATA/unknownkill.err"

start=$(now_ms)
cx n1 -- sh -c "kill -INT ${pid:-0}" 2>/dev/null
rc=$(bg_rc sint 15)
check "SIGINT to roam run ends the remote sleep 100: exit $rc, want 130 (after $(secs_since "$start")s)" test "$rc" = 130
check "the remote sleep is gone from n2 (it was there: $there)" gone_after $there n2 "${pid:-0}"
check "roam ps on n1 no longer lists $gpid" wait_until 10 ps_lacks n1 "$gpid"

bg_start skill "$ROAM" run --on n2 -- sleep 100
pid=$(bg_pid skill)
gpid="n1:${pid:-none}"
wait_until 15 ps_where_is n1 "$gpid" n2 >/dev/null
there=$(seen wait_until 10 comm_is n2 "${pid:-0}" sleep)
start=$(now_ms)
cx n4 -- "$ROAM" kill -s TERM "$gpid" </dev/null 2>"$DATA/kill.err"; krc=$?
rc=$(bg_rc skill 15)
check "roam kill -s TERM $gpid issued on n4 ends it: roam kill exit $krc, roam run exit $rc, want 143 ($(secs_since "$start")s) $(head -c 200 "$DATA/kill.err")" \
  test "$krc" -eq 0 -a "$rc" = 143
check "the remote sleep killed by roam kill is gone from n2 (it was there: $there)" gone_after $there n2 "${pid:-0}"

bg_start shup "$ROAM" run --on n3 -- sleep 100
pid=$(bg_pid shup)
there=$(seen wait_until 15 comm_is n3 "${pid:-0}" sleep)
cx n1 -- sh -c "kill -HUP ${pid:-0}" 2>/dev/null
rc=$(bg_rc shup 15)
check "SIGHUP to roam run ends the remote sleep on n3: exit $rc, want 129 (it ran there: $there)" test "$rc" = 129 -a $there = yes

# The signal goes to the process, which may handle it: its exit status counts.
bg_start trap "$ROAM" run --on n3 -- sh -c 'trap "echo caught TERM; exit 7" TERM; echo ready; while :; do sleep 0.1; done'
pid=$(bg_pid trap)
wait_until 15 grep -q ready "$DATA/trap.out" >/dev/null
cx n1 -- sh -c "kill -TERM ${pid:-0}" 2>/dev/null
rc=$(bg_rc trap 15)
check "SIGTERM to roam run reaches a remote process that handles it: it prints and exits 7 (exit $rc, stdout: $(errtext "$DATA/trap.out"))" \
  test "$rc" = 7 -a "$(tail -1 "$DATA/trap.out")" = "caught TERM"

# Any signal the process may be sent reaches it, not only the usual ones:
# real-time signals (SIGRTMIN+1 is also the number the deputy uses for
# itself), SIGPWR, SIGURG, and SIGSEGV sent by kill. Until 2026-12-07 the
# first killed roam run, and the job with it.
bg_start rtsig "$ROAM" run --on n3 -- python3 -c '
import signal, time
got = []
for s in (signal.SIGRTMIN + 2, signal.SIGRTMIN + 1, signal.SIGPWR, signal.SIGURG, signal.SIGSEGV):
    signal.signal(s, lambda n, f: got.append(n))
print("ready", flush=True)
while len(got) < 5:
    time.sleep(0.02)
print("got", *["RTMIN+%d" % (n - signal.SIGRTMIN) if n >= signal.SIGRTMIN else signal.Signals(n).name for n in got])
'
pid=$(bg_pid rtsig)
wait_until 15 grep -q ready "$DATA/rtsig.out" >/dev/null
for sig in RTMIN+2 RTMIN+1 PWR URG SEGV; do cx n1 -- bash -c "kill -s $sig ${pid:-0}" 2>/dev/null; sleep 0.2; done
rc=$(bg_rc rtsig 15)
check "signals beyond the usual ones reach a remote process that handles them, in order (exit $rc, want 0; stdout: $(errtext "$DATA/rtsig.out"))" \
  test "$rc" = 0 -a "$(tail -1 "$DATA/rtsig.out")" = "got RTMIN+2 RTMIN+1 SIGPWR SIGURG SIGSEGV"

bg_start knum "$ROAM" run --on n3 -- sleep 100
pid=$(bg_pid knum)
there=$(seen wait_until 15 comm_is n3 "${pid:-0}" sleep)
cx n2 -- "$ROAM" kill -s 9 "n1:${pid:-none}" </dev/null 2>"$DATA/knum.err"; krc=$?
rc=$(bg_rc knum 15)
check "roam kill -s 9 (a number) issued on n2 kills n1:$pid on n3: roam kill exit $krc, roam run exit $rc, want 137 (it ran there: $there) $(errtext "$DATA/knum.err")" \
  test "$krc" -eq 0 -a "$rc" = 137 -a $there = yes

bg_start lock "$ROAM" run --lock -- sh -c 'echo $$; exec sleep 100'
pid=$(bg_pid lock)
gpid="n1:${pid:-none}"
if t=$(wait_until 15 ps_where_is n1 "$gpid" n1); then
  pass "roam run --lock runs at home: roam ps shows $gpid where=n1 (after ${t}s)"
else
  fail "roam run --lock: roam ps never showed $gpid where=n1 (row: $(ps_row n1 "$gpid"))"
fi
check "roam ps shows the --lock process with lock=true" test "$(ps_field n1 "$gpid" lock)" = true
lock_pid=$(head -1 "$DATA/lock.out" 2>/dev/null)
check "the process run at home has roam run's PID ($lock_pid vs $pid)" test -n "$lock_pid" -a "$lock_pid" = "${pid:-x}"
cx n1 -- sh -c "kill -TERM ${pid:-0}" 2>/dev/null
rc=$(bg_rc lock 15)
check "SIGTERM to roam run ends the locked process (exit $rc, want 143)" test "$rc" = 143

# Ctrl-Z: SIGTSTP stops the remote process and roam run; SIGCONT resumes
# both. One shell on n1 plays the user's job control (a bg_start job would
# end when roam run stops); the remote state is read from roam ps.
out=$(CX_LIMIT=90 cx n1 -- bash -c '
  set -m; R=$1
  state() { $R ps --json | jq -r --argjson p "$2" ".processes[] | select(.pid == \$p) | .state"; }
  until_state() { for i in $(seq 50); do [ "$(state x "$1")" $2 "$3" ] && return 0; sleep 0.2; done; return 1; }
  $R run --on n2 -- sleep 100 </dev/null >/dev/null 2>&1 &
  p=$!
  until_state $p = sleeping
  kill -TSTP $p
  until_state $p = stopped && echo remote_stopped
  [[ "$(ps -o stat= -p $p)" == T* ]] && echo home_stopped
  kill -CONT $p
  until_state $p != stopped && echo remote_resumed
  [[ "$(ps -o stat= -p $p)" != T* ]] && echo home_resumed
  kill -TERM $p
  wait $p
  echo rc=$?
' _ "$ROAM" 2>&1 | tr '\n' ' ')
for what in remote_stopped home_stopped remote_resumed home_resumed rc=143; do
  check "SIGTSTP then SIGCONT then SIGTERM to roam run --on n2 -- sleep: $what (saw: $out)" grep -qw "$what" <<<"$out"
done

# -t: a pseudo-terminal on the guest, with the caller's window size, and
# the new size after a SIGWINCH. `script` gives roam run a terminal.
out=$(cx n1 -- script -qec "stty rows 33 cols 77; $ROAM run -t --on n2 -- sh -c 'tty; stty size'" /dev/null </dev/null 2>&1 | tr -d '\r')
check "roam run -t gives the remote process a terminal with the caller's size 33x77 (got: $(tr '\n' '|' <<<"$out"))" \
  bash -c 'grep -q "/dev/pts/" <<<"$1" && grep -q "33 77" <<<"$1"' _ "$out"
out=$(cx n1 -- script -qec "stty rows 33 cols 77; (sleep 1; stty rows 44 cols 88 </dev/tty; pkill -WINCH -f 'roam run -t') & $ROAM run -t --on n2 -- sh -c 'sleep 2.5; stty size'" /dev/null </dev/null 2>&1 | tr -d '\r')
check "a window size change reaches the remote terminal: 44x88 (got: $(tr '\n' '|' <<<"$out"))" grep -q "44 88" <<<"$out"

# --- 3b. what outlives the process: children it left in the background ----------------
# At home, a child left running in the background goes on writing to the
# terminal after the shell has the process's status. A remote one must too
# (docs/HOME.md, "What outlives the process"). The child waits for a file
# the test makes, so that nothing here depends on timing.
none_on() { ! cx "$1" -- pgrep -f "$2" >/dev/null 2>&1; }  # none_on NODE REGEX: no such process there
# all_then_none GOT WANT REGEX: GOT = WANT, then no process matches REGEX on n2 within 10 s.
all_then_none() { [ "$1" = "$2" ] && wait_until 10 none_on n2 "$3" >/dev/null; }
# all_then_absent GOT WANT GPID: GOT = WANT, then GPID leaves n1's roam ps within 10 s.
all_then_absent() { [ "$1" = "$2" ] && wait_until 10 ps_lacks n1 "$3" >/dev/null; }
bg_start rest "$ROAM" run --on n2 -- sh -c "(while [ ! -e '$DATA/rest.go' ]; do sleep 0.05; done; echo bg-out; echo bg-err >&2; sleep 0.2; echo bg-last) & echo fg; exit 7"
pid=$(bg_pid rest); gpid="n1:${pid:-none}"
rc=$(bg_rc rest 20)
check "roam run gives the exit status (7) while the child it left in the background runs on (exit $rc, output so far: $(errtext "$DATA/rest.out"))" \
  test "$rc" = 7 -a "$(cat "$DATA/rest.out")" = fg
row=$(ps_row n1 "$gpid")
check "roam ps lists $gpid meanwhile: where n2, state exited, CANTMOVE exited ($row)" \
  test "$(jq -r '[.where, .state, .cantmove] | join("/")' <<<"${row:-{\}}")" = n2/exited/exited
cx n1 -- "$ROAM" migrate "$gpid" n3 </dev/null >/dev/null 2>"$DATA/rest.mig.err"; mrc=$?
check "roam migrate of it is refused in one line that says why (exit $mrc, \"$(errtext "$DATA/rest.mig.err")\")" \
  bash -c '[ $1 -ne 0 ] && [ "$(wc -l <"$2")" -eq 1 ] && grep -q "has exited" "$2"' _ $mrc "$DATA/rest.mig.err"
touch "$DATA/rest.go"
check "what the child writes afterwards reaches the caller's stdout and stderr, in order (out: $(errtext "$DATA/rest.out") err: $(errtext "$DATA/rest.err"))" \
  wait_until 15 bash -c '[ "$(cat "$1.out")" = "$(printf "fg\nbg-out\nbg-last")" ] && [ "$(cat "$1.err")" = bg-err ]' _ "$DATA/rest"
check "once the child's output has ended, $gpid leaves roam ps" wait_until 10 ps_lacks n1 "$gpid"

out=$(cx n1 -- bash -c 'x=$("$1" run --on n3 -- sh -c "(sleep 0.3; echo bg) & echo fg"); echo "[$x]"' _ "$ROAM")
check "a command substitution takes the background child's output too, as at home (got: $(tr '\n' '|' <<<"$out"))" \
  test "$out" = "$(printf '[fg\nbg]')"

bg_start restkill "$ROAM" run --on n2 -- sh -c "sleep 31.5 & echo fg"
pid=$(bg_pid restkill); gpid="n1:${pid:-none}"
rc=$(bg_rc restkill 20)
there=$(seen wait_until 5 cx n2 -- pgrep -f '^sleep 31.5')
cx n1 -- "$ROAM" kill "$gpid" </dev/null >/dev/null 2>"$DATA/restkill.kill.err"; krc=$?
check "roam kill $gpid after it exited (status $rc, roam kill: $krc $(errtext "$DATA/restkill.kill.err")) ends the child it left on n2 (seen there before: $there)" \
  all_then_none "$rc/$krc/$there" 0/0/yes '^sleep 31.5'
check "and $gpid leaves roam ps" wait_until 10 ps_lacks n1 "$gpid"

bg_start restrelay "$ROAM" run --on n2 -- sh -c "sleep 32.5 & echo fg"
pid=$(bg_pid restrelay); gpid="n1:${pid:-none}"
rc=$(bg_rc restrelay 20)
there=$(seen wait_until 5 cx n2 -- pgrep -f '^sleep 32.5')
relay=$(cx n1 -- pgrep -f -- "run --on n2 -- sh -c sleep 32.5" | head -1)
[ -n "$relay" ] && cx n1 -- kill "$relay"
check "killing what roam run left at home to write the rest (pid ${relay:-none}) ends the child on n2 too (status $rc, seen there before: $there)" \
  all_then_none "$rc/${relay:+found}/$there" 0/found/yes '^sleep 32.5'
check "and $gpid leaves roam ps" wait_until 10 ps_lacks n1 "$gpid"

bg_start restquiet "$ROAM" run --on n2 -- sh -c "sleep 33.5 >/dev/null 2>&1 & echo fg"
pid=$(bg_pid restquiet); gpid="n1:${pid:-none}"
rc=$(bg_rc restquiet 20)
check "a child that let go of the output (>/dev/null) does not keep its process in roam ps (status $rc)" \
  all_then_absent "$rc" 0 "$gpid"
cx n2 -- pkill -f '^sleep 33.5'

# --- 4. users: a job runs as the user who started it ----------------------------------

cx n2 -- sh -c 'echo secret > /tmp/rootonly; chmod 600 /tmp/rootonly'
out=$(cx n1 -- "$ROAM" run --on n2 -- cat /tmp/rootonly </dev/null 2>&1)
check "root's job on n2 reads n2's private /tmp/rootonly (got: $out)" test "$out" = secret
out=$(cx n1 -- "${NOBODY[@]}" "$ROAM" run --on n2 -- cat /tmp/rootonly </dev/null 2>&1); rc=$?
check "nobody's job on n2 cannot read the root-only file: cat fails with Permission denied (exit $rc, output: $(head -c 200 <<<"$out" | tr '\n' '|'))" \
  bash -c '[ "$1" -ne 0 ] && ! grep -q secret <<<"$2" && grep -q "Permission denied" <<<"$2"' _ "$rc" "$out"
out=$(cx n1 -- "${NOBODY[@]}" "$ROAM" run --on n2 -- sh -c 'id -u; id -g; id -G' </dev/null 2>&1 | tr '\n' ' ')
check "nobody's job on n2 runs as uid 65534, gid 65534, no other groups (got: $out)" test "$out" = "65534 65534 65534 "

bg_start hide "$ROAM" run --on n3 -- sleep 100
pid=$(bg_pid hide)
wait_until 15 ps_where_is n1 "n1:${pid:-none}" n3 >/dev/null
seen_cmd=$(cx n2 -- "${NOBODY[@]}" "$ROAM" ps --all --json </dev/null 2>/dev/null | jq -r --arg g "n1:${pid:-none}" '.processes[] | select(.gpid == $g) | .command')
check "nobody sees root's process in roam ps --all but not its command line (command: $seen_cmd)" test "$seen_cmd" = null
cx n1 -- sh -c "kill -KILL ${pid:-0}" 2>/dev/null
bg_rc hide 15 >/dev/null

# --- 5. roam's own failures: exit 255 with one line -------------------------------------

cx n1 -- "$ROAM" run --on n2 -- /nonexistent/prog </dev/null >/dev/null 2>"$DATA/notfound.err"; rc=$?
check "a command that does not exist on n2 exits 127 like in a shell (exit $rc, \"$(errtext "$DATA/notfound.err")\")" \
  test $rc -eq 127 -a -s "$DATA/notfound.err"
expect_refused "roam run --on n2 from a cwd that n2 lacks (n1's private /tmp/roam-it-onlyhere) exits 255" \
  bash -c 'mkdir -p /tmp/roam-it-onlyhere && cd /tmp/roam-it-onlyhere && exec "$1" run --on n2 -- true' _ "$ROAM"

expect_refused "roam run --on an unknown node n9 exits 255" "$ROAM" run --on n9 -- true
cx n3 -- "$ROAM" node block
wait_until 15 n3_accepts_guests_seen_by_n1 false >/dev/null
expect_refused "roam run --on a blocked node n3 exits 255" "$ROAM" run --on n3 -- true
cx n3 -- "$ROAM" node unblock
wait_until 15 n3_accepts_guests_seen_by_n1 true >/dev/null

kill_roamd n4
if t=$(wait_until 30 all_see n4 dead n1); then
  echo "  info: n1 saw n4's roamd dead after ${t}s"
  expect_refused "roam run --on a dead node n4 exits 255" "$ROAM" run --on n4 -- true
else
  fail "n1 never saw n4 dead"
fi

# The guest's roamd dies under a running process: roam run ends with 255.
bg_start crash "$ROAM" run --on n2 -- sleep 100
pid=$(bg_pid crash)
wait_until 15 ps_where_is n1 "n1:${pid:-none}" n2 >/dev/null
there=$(seen wait_until 10 comm_is n2 "${pid:-0}" sleep)
start=$(now_ms)
kill_roamd n2
rc=$(bg_rc crash 15)
t=$(secs_since "$start")
if [ "$rc" = 255 ] && one_line_error "$DATA/crash.err"; then
  pass "killing n2's roamd under roam run --on n2 -- sleep 100 ends roam run with 255 after ${t}s (goal: a few s; \"$(head -c 200 "$DATA/crash.err")\")"
else
  fail "killing n2's roamd under a running job: roam run exit $rc after ${t}s (want 255 within 15 s), stderr: $(head -c 300 "$DATA/crash.err" 2>/dev/null | tr '\n' '|')"
fi
check "the remote sleep is gone from n2 after its roamd died (it was there: $there)" gone_after $there n2 "${pid:-0}"

# The home's roamd dies: its guest elsewhere is killed, roam run says so.
bg_start homecrash "$ROAM" run --on n3 -- sleep 100
pid=$(bg_pid homecrash)
there=$(seen wait_until 15 comm_is n3 "${pid:-0}" sleep)
kill_roamd n1
rc=$(bg_rc homecrash 15)
check "killing the home's (n1's) roamd ends roam run with 255 (exit $rc, \"$(errtext "$DATA/homecrash.err")\")" test "$rc" = 255
check "the guest of a dead home is killed on n3 (it ran there: $there)" gone_after $there n3 "${pid:-0}"

echo "  info: the whole test took $(secs_since "$T0")s"
finish
