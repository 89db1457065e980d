#!/usr/bin/env bash
# The balancer on a real 4-node `roam cluster` with unequal CPU quotas
# (0.8/0.6/0.4/0.2 of a core): running processes move by themselves to
# where they finish sooner (docs/BALANCING.md).
#  1. 12 CPU-bound jobs started while only n1 accepts guests: a blocked node
#     receives none; once unblocked, n2 and n3 get jobs within seconds, n4
#     (balancing off) none until it is switched on; a locked job stays home;
#     the spread ends near 5/4/2/1 (the shares); in the steady state that
#     follows no job moves more than once in 20 s; every move is logged
#     with its reason and counted in `roam nodes`.
#  2. A node busy with its owner's programs (CPU hogs that roam did not
#     start) is left by the roam job on it.
#  3. Memory ushering: a job on n4 (memory limit 200 MiB) grows to 240 MiB:
#     with `roam node usher off n4` it is killed there;
#     it is moved to a node with room before the OOM killer acts, and ends
#     with its data intact.
#  4. A job no other node can take (it holds a file of n1's private /tmp)
#     is left alone for a while after each failed move, not tried every
#     period.
# The jobs are python3 loops that run until a stop file appears, then print
# the node they ended on. Needs root.
set -u
source "$(dirname "$0")/lib.sh"
CLUSTER=tbal
CX_LIMIT=120
test_frame bal

cat >"$DATA/job.py" <<'PY'
import os, sys
stop, n = sys.argv[1], 0
while not os.path.exists(stop):
    for i in range(50000):
        n += i
print(os.uname().nodename, n > 0, flush=True)
PY
# grow.py MIB: 120 MiB at once, then 5 MiB every half second up to MIB;
# each block filled with its own byte, checked at the end.
cat >"$DATA/grow.py" <<'PY'
import os, sys, time
target, step = int(sys.argv[1]) << 20, 5 << 20
chunks = [bytearray([7]) * (120 << 20)]
total = len(chunks[0])
while total < target:
    chunks.append(bytearray([len(chunks) % 251]) * step)
    total += step
    time.sleep(0.5)
ok = chunks[0].count(7) == len(chunks[0]) and all(c.count(i % 251) == len(c) for i, c in enumerate(chunks) if i)
print(os.uname().nodename, total >> 20, ok, flush=True)
PY

"$ROAM" cluster down --name $CLUSTER >/dev/null 2>&1
if ! "$ROAM" cluster up --name $CLUSTER --nodes 4 --cpu-quota 0.8,0.6,0.4,0.2 --mem-limit 0,0,0,200M --shared "$DATA" >/dev/null; then
  fail "cluster up"; finish; exit 1
fi
wait_until 20 full_mesh n1 n2 n3 n4 >/dev/null || fail "cluster never formed"
for n in n1 n2 n3 n4; do cx "$n" -- "$ROAM" node speed 1000 >/dev/null || fail "roam node speed on $n"; done

# where_counts: "n1 n2 n3 n4" counts of our running jobs, from n1's roam ps.
ps_json() { cx n1 -- "$ROAM" ps --json 2>/dev/null; }
where_counts() {
  ps_json | jq -r '[.processes[] | select(.command | test("job.py"))] as $p |
    [("n1","n2","n3","n4") as $n | [$p[] | select(.where == $n)] | length] | join(" ")'
}
count_on() { where_counts | awk -v i="${1#n}" '{print $i}'; }  # count_on NODE
has_jobs() { [ "$(count_on "$1")" -ge "${2:-1}" ]; }
none_on() { [ "$(count_on "$1")" = 0 ]; }

# --- 1. started while only n1 accepts guests ---------------------------------------
for n in n2 n3 n4; do cx n1 -- "$ROAM" node block "$n" >/dev/null || fail "block $n"; done
three_blocked() { nodes_json n1 | jq -e '[.nodes[] | select(.blocked)] | length == 3'; }
wait_until 10 three_blocked >/dev/null || fail "n1 never saw n2..n4 blocked"
cx n1 -- bash -c 'cd "$1"; for i in $(seq 11); do "$2" run -- python3 job.py stop1 >"$i.out" 2>"$i.err" & done
  "$2" run --lock -- python3 job.py stop1 >locked.out 2>locked.err & wait' _ "$DATA" "$ROAM" >"$DATA/driver1.out" 2>&1 &
BG_PIDS+=($!)
all_twelve() { [ "$(where_counts)" = "12 0 0 0" ]; }
wait_until 20 all_twelve >/dev/null || fail "the 12 jobs never all ran on n1 (counts: $(where_counts))"
LOCKED=$(ps_json | jq -r '.processes[] | select(.lock) | .gpid')
check "the locked job is listed as locked ($LOCKED)" [ -n "$LOCKED" ]
sleep 6  # three balance periods, the jobs older than the minimum age
check "blocked nodes receive none: all 12 still on n1 (counts: $(where_counts))" all_twelve

cx n1 -- "$ROAM" node balance off n4 >/dev/null || fail "roam node balance off n4"
n4_fixed() { nodes_json n1 | jq -e '.nodes[] | select(.name == "n4") | .balance == false'; }
wait_until 10 n4_fixed >/dev/null || fail "n1 never saw balancing off on n4"
t0=$(now_ms)
for n in n2 n3 n4; do cx n1 -- "$ROAM" node unblock "$n" >/dev/null || fail "unblock $n"; done
spread() { has_jobs n2 && has_jobs n3; }
if t=$(wait_until 30 spread); then
  pass "unblocked: n2 and n3 got jobs after ${t}s (counts: $(where_counts))"
else
  fail "unblocked: n2 and n3 never both got jobs (counts: $(where_counts)); n1: $(cx n1 -- grep -E 'balance: n1:[0-9]+ stays|could not' /run/roam/roamd.log | tail -3 | cut -c1-300 | tr '\n' '|')"
fi
sleep 8
check "n4 (balancing off) got none (counts: $(where_counts))" none_on n4
cx n1 -- "$ROAM" node balance on n4 >/dev/null || fail "roam node balance on n4"
if t=$(wait_until 30 has_jobs n4); then
  pass "balancing on again: n4 got a job after ${t}s (counts: $(where_counts))"
else
  fail "balancing on again: n4 never got a job (counts: $(where_counts))"
fi
# Near the shares' split: 5/4/2/1 (each node within 2 jobs of it).
near_shares() {
  where_counts | awk '{ w[1]=5; w[2]=4; w[3]=2; w[4]=1; for (i = 1; i <= 4; i++) if ($i - w[i] > 2 || w[i] - $i > 2) exit 1 }'
}
if t=$(wait_until 30 near_shares); then
  pass "the spread comes near 5/4/2/1 (counts: $(where_counts), after ${t}s more)"
else
  fail "the spread never came near 5/4/2/1 (counts: $(where_counts))"
fi
check "the locked job $LOCKED stayed home, never moved" \
  test "$(ps_json | jq -r --arg g "$LOCKED" '.processes[] | select(.gpid == $g) | "\(.where) \(.nmig)"')" = "n1 0"
sleep 4
nmig_of() { ps_json | jq -r '[.processes[] | select(.command | test("job.py")) | "\(.gpid) \(.nmig)"] | sort | .[]'; }
nmig_of >"$DATA/nmig.before"
sleep 20
nmig_of >"$DATA/nmig.after"
moves=$(join "$DATA/nmig.before" "$DATA/nmig.after" | awk '{ d = $3 - $2; if (d > max) max = d; total += d } END { printf "%d %d", max, total }')
check "steady state: no job moved more than once in 20 s (most moves of one job, all moves: $moves)" \
  test "${moves%% *}" -le 1
check "each move is logged with its reason" \
  cx n1 -- grep -qE 'balance: move n1:[0-9]+ n1 -> n[234] \((cost|load): .* CPUs wanted on n1' /run/roam/roamd.log
made=$(nodes_json n1 | jq '[.nodes[] | select(.name == "n1") | .balance_moves] | first')
admitted=$(nodes_json n1 | jq '[.nodes[] | select(.name != "n1") | .balanced_in] | add')
check "roam nodes counts the moves: n1 made $made, the others admitted $admitted" \
  test "$made" -ge 4 -a "$admitted" -ge 4
touch "$DATA/stop1"
ended() { [ "$(cat "$DATA"/*.out 2>/dev/null | grep -c ' True$')" -ge 12 ]; }
wait_until 60 ended >/dev/null
check "all 12 jobs ended with their result, once each ($(cat "$DATA"/*.out | grep -c ' True$') results)" \
  test "$(cat "$DATA"/*.out | grep -c ' True$')" = 12
check "no job wrote an error: $(cat "$DATA"/*.err | head -c 300)" test -z "$(cat "$DATA"/*.err)"

# --- 2. the owner's programs push guests away ---------------------------------------
settled() { [ -z "$(ps_json | jq -r '.processes[]?.gpid')" ]; }
wait_until 30 settled >/dev/null || fail "jobs of part 1 still listed"
cx n1 -- bash -c 'cd "$1"; for i in 1 2; do "$2" run -- python3 job.py stop2 >"h$i.out" 2>"h$i.err" & done; wait' \
  _ "$DATA" "$ROAM" >"$DATA/driver2.out" 2>&1 &
BG_PIDS+=($!)
two_running() { [ "$(where_counts | awk '{print $1+$2+$3+$4}')" = 2 ]; }
wait_until 20 two_running >/dev/null || fail "the two jobs of part 2 never ran"
sleep 4
# The node with a job and the most capacity: where the owner now works.
busy=$(where_counts | awk '{ if ($1) print "n1"; else if ($2) print "n2"; else if ($3) print "n3"; else print "n4" }')
before=$(count_on "$busy")
for i in 1 2 3; do
  cx "$busy" -- timeout 45 python3 -c 'while True: pass' >/dev/null 2>&1 &
  BG_PIDS+=($!)
done
left() { none_on "$busy"; }
if t=$(wait_until 40 left); then
  pass "three CPU hogs of $busy's owner (not roam's): its $before roam job(s) left after ${t}s (counts: $(where_counts))"
else
  fail "three CPU hogs of $busy's owner: roam's jobs stayed (counts: $(where_counts))"
fi
check "the move off $busy is logged" cx n1 -- grep -qE "balance: move n1:[0-9]+ $busy -> " /run/roam/roamd.log
touch "$DATA/stop2"
cx "$busy" -- pkill -f 'while True: pass' >/dev/null 2>&1  # the owner leaves: part 3 has the CPU back
both_ended() { [ "$(cat "$DATA"/h*.out 2>/dev/null | grep -c ' True$')" -ge 2 ]; }
wait_until 60 both_ended >/dev/null
check "both jobs of part 2 ended with their result" test "$(cat "$DATA"/h*.out | grep -c ' True$')" = 2

# --- 3. memory ushering -------------------------------------------------------------
wait_until 30 settled >/dev/null || fail "jobs of part 2 still listed"
# Ushering off on n4: nothing saves the job from n4's limit (this is what
# the test below would see if ushering did nothing). Balancing off there
# too, for both jobs: n4 has a fifth of a CPU, and a balancer once moved
# the job to a faster node before it reached the limit (it ended with
# status 0). The usher does not heed balancing off.
usher_n4_is() { [ "$(cx n1 -- "$ROAM" nodes --json | jq '.nodes[] | select(.name == "n4") | .usher')" = "$1" ]; }
cx n1 -- "$ROAM" node usher off n4 >/dev/null || fail "roam node usher off n4"
cx n1 -- "$ROAM" node balance off n4 >/dev/null || fail "roam node balance off n4"
wait_until 10 usher_n4_is false >/dev/null || fail "n1 never saw n4's ushering off"
wait_until 10 n4_fixed >/dev/null || fail "n1 never saw balancing off on n4"
cx n1 -- bash -c 'cd "$1"; "$2" run --on n4 -- python3 grow.py 240 >grow0.out 2>grow0.err; echo $? >grow0.rc' _ "$DATA" "$ROAM" >/dev/null 2>&1
check "with ushering off, the growing job is killed on n4 (status $(cat "$DATA/grow0.rc"), want 137; $(cat "$DATA/grow0.out"))" test "$(cat "$DATA/grow0.rc")" = 137
cx n1 -- "$ROAM" node usher on n4 >/dev/null || fail "roam node usher on n4"
check "roam nodes shows n4's ushering on again" wait_until 10 usher_n4_is true
cx n1 -- bash -c 'cd "$1"; "$2" run --on n4 -- python3 grow.py 240 >grow.out 2>grow.err; echo $? >grow.rc' \
  _ "$DATA" "$ROAM" >/dev/null 2>&1 &
BG_PIDS+=($!)
grow_done() { [ -s "$DATA/grow.rc" ]; }
if ! wait_until 150 grow_done >/dev/null; then
  fail "the growing job never ended; n4: $(cx n4 -- grep -E 'usher|move' /run/roam/roamd.log | tail -4 | tr '\n' '|'); n1: $(cx n1 -- grep -E 'n1:[0-9]+.*(move|left|usher|could not)' /run/roam/roamd.log | tail -4 | tr '\n' '|')"
fi
read -r node mib ok <"$DATA/grow.out"
check "a job growing to 240 MiB on n4 (limit 200 MiB) ended well: status $(cat "$DATA/grow.rc") (want 0), on ${node:-?} (not n4), $mib MiB, data intact: $ok $(head -c 200 "$DATA/grow.err")" \
  test "$(cat "$DATA/grow.rc")" = 0 -a "$node" != n4 -a "$mib" = 240 -a "$ok" = True
check "n4 logged why it moved the job away" cx n4 -- grep -qE 'usher: n4 has [0-9]+ of [0-9]+ MiB free' /run/roam/roamd.log
check "roam nodes counts n4's ushered process" test "$(json_field n1 n4 ushered)" -ge 1
cx n1 -- "$ROAM" node balance on n4 >/dev/null || fail "roam node balance on n4"

# --- 4. a process that cannot move is not tried every period -------------------------
# Three jobs at home on n1 (0.8 core) hold fd 3, a file in n1's own /tmp,
# which no other node has: the balancer would move two of them (the third
# once those are left alone), each target refuses (the file is missing
# there), and after such a failure the job is left alone for 10 s, then
# 20 s. Without the back-off, two jobs every 2 s period (204 tries were
# counted in one run of part 1 when its jobs held a pipe from outside,
# which CANTMOVE now names, so that the balancer does not try them at all).
log_lines=$(cx n1 -- cat /run/roam/roamd.log | wc -l)
cx n1 -- bash -c 'cd "$1"; for i in 1 2 3; do "$2" run --on n1 -- sh -c "exec 3>/tmp/only-n1-$i; exec python3 job.py stop4" >p$i.out 2>p$i.err </dev/null & done; wait' \
  _ "$DATA" "$ROAM" >/dev/null 2>&1 &
BG_PIDS+=($!)
three_home() { [ "$(where_counts)" = "3 0 0 0" ]; }
wait_until 20 three_home >/dev/null || fail "the three jobs holding a file of n1 never ran on n1 (counts: $(where_counts))"
sleep 22
tries=$(cx n1 -- cat /run/roam/roamd.log | tail -n +$((log_lines + 1)) | grep -cE 'balance: n1:[0-9]+ stays on n1')
check "jobs holding a file only n1 has stay on n1, tried at most 3 times each in 22 s ($tries failed tries in all, want 1 to 9; counts: $(where_counts))" \
  test "$tries" -ge 1 -a "$tries" -le 9 -a "$(where_counts)" = "3 0 0 0"
touch "$DATA/stop4"

finish
