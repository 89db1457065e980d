#!/usr/bin/env bash
# `make demo`: a 4-node cluster on this machine with unequal CPU quotas; the
# nodes find each other; 8 CPU-bound jobs started on n1 with `roam run`
# spread over the nodes (`roam ps --all` shows where); a job moves while it
# runs; 12 jobs started while only n1 accepts guests are spread and
# rebalanced by the balancer as nodes come and go, with the makespan beside
# balancing off and the ideal; one node's roamd is killed and declared
# dead, then restarted and seen alive again; everything is torn down at the
# end.
set -u
cd "$(dirname "$0")/.."
ROAM=$(realpath -m "${BUILD:-build}")/bin/roam  # make demo BUILD=DIR: that build
C=demo
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
cx() { "$ROAM" cluster exec --name $C "$@"; }
state_of() {  # state_of OBSERVER SUBJECT
  cx "$1" -- "$ROAM" nodes --json 2>/dev/null |
    jq -r --arg s "$2" '[.nodes[] | select(.name == $s) | .state] | first // "none"'
}
wait_state() {  # wait_state OBSERVER SUBJECT STATE SECONDS
  local start=$SECONDS
  while [ "$(state_of "$1" "$2")" != "$3" ]; do
    [ $((SECONDS - start)) -ge "$4" ] && return 1
    sleep 0.2
  done
}
# The cluster's shared directory (a lab's NFS home): the moved job writes
# its output there, a file that every node has.
SHARED=$(mktemp -d /var/tmp/roam-demo.XXXXXX)
chmod 755 "$SHARED"
trap '"$ROAM" cluster down --name $C >/dev/null 2>&1; rm -rf "$SHARED"' EXIT

"$ROAM" cluster down --name $C >/dev/null 2>&1
say "roam cluster up --nodes 4 --cpu-quota 1,0.5,0.5,0.25 --mem-limit 2G,1G,1G,512M"
"$ROAM" cluster up --name $C --nodes 4 --cpu-quota 1,0.5,0.5,0.25 --mem-limit 2G,1G,1G,512M --shared "$SHARED" || exit 1
"$ROAM" cluster status --name $C

say "the nodes find each other by multicast (waiting for n1 to see all four)"
for n in n2 n3 n4; do wait_state n1 $n alive 30 || { echo "n1 does not see $n"; exit 1; }; done
sleep 2  # one more round of load gossip
cx n1 -- "$ROAM" nodes

say "8 CPU-bound jobs from n1: roam run -- bc -l (pi to 2,500 digits), placed by load"
# One shell on n1 starts them 0.2 s apart, as a user would from a terminal,
# shows `roam ps --all` while they run, then waits for each and prints its
# status and the last digits it computed.
cx n1 -- bash -c '
  R='"$ROAM"'
  for i in 1 2 3 4 5 6 7 8; do
    echo "scale=2500; 4*a(1)" | $R run -- bc -l > /tmp/job$i.out 2>&1 &
    pids[$i]=$!
    sleep 0.2
  done
  sleep 1
  $R ps --all
  for i in 1 2 3 4 5 6 7 8; do
    wait ${pids[$i]}; rc=$?
    echo "job $i (n1:${pids[$i]}) exit $rc, pi ends ...$(tail -n 1 /tmp/job$i.out | tail -c 12)"
  done
'

say "live migration: a job printing a numbered line every 5 ms, moved n2 -> n3 -> n4 -> home (n1) -> n2 while it runs"
cx n1 -- bash -c '
  R='"$ROAM"'
  $R run --on n2 -- python3 -c "
import time
for i in range(2000):
    print(i, flush=True); time.sleep(0.005)
" > '"$SHARED"'/count.out &
  p=$!
  sleep 1
  moved=0
  for n in n3 n4 home n2; do $R migrate n1:$p $n && moved=$((moved + 1)); sleep 1; done
  $R ps
  wait $p; echo "n1:$p exit $?"
  if awk "NR-1 != \$1 {exit 1} END {exit NR != 2000}" '"$SHARED"'/count.out; then
    echo "the home received all 2000 lines, in order: no gap, no repeat"
  else
    echo "OUTPUT DAMAGED"; exit 1
  fi
  [ $moved -eq 4 ] || { echo "ONLY $moved OF 4 MOVES SUCCEEDED"; exit 1; }
' || exit 1

# showcase MODE: 12 CPU-bound jobs from n1 while n2..n4 are blocked; n2 and
# n3 come after 3 s, n4 after 6 s, n3 goes (drained) at 12 s and comes back
# at 18 s. Prints the makespan and the jobs per node every 2 s.
showcase() {
  local mode=$1 n
  for n in n1 n2 n3 n4; do cx n1 -- "$ROAM" node balance "$mode" $n >/dev/null; done
  for n in n2 n3 n4; do cx n1 -- "$ROAM" node block $n >/dev/null; done
  sleep 2
  local start=$SECONDS t0; t0=$(date +%s%N)
  cx n1 -- bash -c 'for i in $(seq 12); do "$1" run -- awk -v n="$2" "BEGIN { for (i = 0; i < n; i++) s += i % 7 }" & done; wait' \
    _ "$ROAM" "$WORK" &
  local jobs=$! next=3 stage=0
  while kill -0 $jobs 2>/dev/null; do
    sleep 1
    local t=$((SECONDS - start))
    if [ $stage = 0 ] && [ $t -ge 3 ]; then
      stage=1; cx n1 -- "$ROAM" node unblock n2 >/dev/null; cx n1 -- "$ROAM" node unblock n3 >/dev/null; echo "  t=${t}s: n2 and n3 come"
    elif [ $stage = 1 ] && [ $t -ge 6 ]; then
      stage=2; cx n1 -- "$ROAM" node unblock n4 >/dev/null; echo "  t=${t}s: n4 comes"
    elif [ $stage = 2 ] && [ $t -ge 12 ]; then
      stage=3; echo "  t=${t}s: n3 goes (roam node drain n3)"; cx n1 -- "$ROAM" node drain n3 >/dev/null &
    elif [ $stage = 3 ] && [ $t -ge 18 ]; then
      stage=4; cx n1 -- "$ROAM" node unblock n3 >/dev/null; echo "  t=${t}s: n3 comes back"
    fi
    if [ "$t" -ge "$next" ]; then
      next=$((t + 2))
      echo "  t=${t}s: jobs per node $(cx n1 -- "$ROAM" ps | awk 'NR > 1 { c[$4]++ } END { for (n in c) printf "%s:%d ", n, c[n] }')"
    fi
  done
  wait
  for n in n2 n3 n4; do cx n1 -- "$ROAM" node unblock $n >/dev/null; done
  MAKESPAN=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
}
say "balancing: 12 CPU-bound jobs from n1 while only n1 accepts guests; nodes come and go"
WORK=30000000
JOB_CPU=$( { TIMEFORMAT='%3U'; time awk -v n=$WORK 'BEGIN { for (i = 0; i < n; i++) s += i % 7 }'; } 2>&1)
showcase on
ON=$MAKESPAN
sleep 3
say "the same with balancing off (roam node balance off): each job stays where it started"
showcase off
OFF=$MAKESPAN
for n in n1 n2 n3 n4; do cx n1 -- "$ROAM" node balance on $n >/dev/null; done
# The ideal: all the work over the cluster's CPU (the quotas' 2.25 cores,
# but this machine has $(nproc)), with every node there all the time.
IDEAL=$(awk -v c="$JOB_CPU" -v p="$(nproc)" 'BEGIN { cap = 2.25; if (p < cap) cap = p; printf "%.1f", 12 * c / cap }')
echo
echo "makespan with balancing: ${ON} s; with balancing off: ${OFF} s; ideal (12 x ${JOB_CPU} s of CPU / all the cluster's CPU, every node there from the start): ${IDEAL} s"
cx n1 -- grep "balance: move" /run/roam/roamd.log | tail -n 3

pid=$("$ROAM" cluster status --name $C --json | jq -r '.nodes[] | select(.name == "n3") | .roamd_pid')
say "kill -9 n3's roamd (host pid $pid)"
kill -9 "$pid"
start=$(date +%s%N)
wait_state n1 n3 dead 30 && echo "n1 declared n3 dead after $(( ($(date +%s%N) - start) / 1000000 )) ms"
cx n1 -- "$ROAM" nodes

say "restart roamd on n3"
cx n3 -- "$(dirname "$ROAM")/roamd" --daemon
start=$(date +%s%N)
wait_state n1 n3 alive 30 && echo "n3 alive again after $(( ($(date +%s%N) - start) / 1000000 )) ms"
sleep 1
cx n1 -- "$ROAM" nodes

say "roam cluster down"
"$ROAM" cluster down --name $C && echo "cluster removed"
trap - EXIT
