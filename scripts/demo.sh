#!/usr/bin/env bash
# `make demo`: a 4-node cluster on this machine with unequal CPU quotas; the
# nodes find each other; 8 CPU-bound jobs started on n1 with `roam run`
# spread over the nodes (`roam ps --all` shows where); one node's roamd is
# killed and declared dead, then restarted and seen alive again; everything
# is torn down at the end.
set -u
cd "$(dirname "$0")/.."
ROAM=build/bin/roam
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
  R='"$PWD/$ROAM"'
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
  R='"$PWD/$ROAM"'
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

pid=$("$ROAM" cluster status --name $C --json | jq -r '.nodes[] | select(.name == "n3") | .roamd_pid')
say "kill -9 n3's roamd (host pid $pid)"
kill -9 "$pid"
start=$(date +%s%N)
wait_state n1 n3 dead 30 && echo "n1 declared n3 dead after $(( ($(date +%s%N) - start) / 1000000 )) ms"
cx n1 -- "$ROAM" nodes

say "restart roamd on n3"
cx n3 -- build/bin/roamd --daemon
start=$(date +%s%N)
wait_state n1 n3 alive 30 && echo "n3 alive again after $(( ($(date +%s%N) - start) / 1000000 )) ms"
sleep 1
cx n1 -- "$ROAM" nodes

say "roam cluster down"
"$ROAM" cluster down --name $C && echo "cluster removed"
trap - EXIT
