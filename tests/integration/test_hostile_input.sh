#!/usr/bin/env bash
# 100 malformed, tampered and replayed datagrams against a live roamd: the
# daemon stays alive and in the membership, and its counters show them.
set -u
source "$(dirname "$0")/lib.sh"
CLUSTER=ithostile
trap '"$ROAM" cluster down --name $CLUSTER >/dev/null 2>&1' EXIT

"$ROAM" cluster down --name $CLUSTER >/dev/null 2>&1
if ! "$ROAM" cluster up --name $CLUSTER --nodes 3; then
  fail "cluster up"; finish; exit 1
fi
check "3 nodes form one membership" wait_until 30 full_mesh n1 n2 n3

target=$(node_address n2)
pid_before=$(roamd_pid n2)
sent=$(cx n1 -- /usr/bin/python3 "$(dirname "$0")/hostile_datagrams.py" "$target:7946")
echo "$sent"
check "the hostile sender ran" grep -q "replay=30" <<<"$sent"
sleep 2

check "n2's roamd survived (same process)" test "$(roamd_pid n2)" = "$pid_before"
replay=$(counter n2 dropped_replay)
malformed=$(counter n2 dropped_malformed)
bad_mac=$(counter n2 dropped_bad_mac)
invalid=$(counter n2 dropped_invalid)
echo "n2 counters: replay=$replay malformed=$malformed bad_mac=$bad_mac invalid=$invalid"
check "replays counted (>= 29 of 30)" test "$replay" -ge 29
total=$((replay + malformed + bad_mac + invalid))
check "every hostile datagram but at most one was dropped ($total >= 99)" test "$total" -ge 99
check "n2 is still alive in everyone's table" wait_until 10 all_see n2 alive n1 n3
check "n2 still answers roam nodes" cx n2 -- "$ROAM" nodes

finish
