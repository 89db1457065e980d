#!/usr/bin/env bash
# Idle roamd CPU use on a 4-node `roam cluster`, as a share of one core.
# Reference: one core (100%). Goal: under 0.5% per roamd.
# Usage: bench/idle_cpu.sh [SECONDS]   (default 60)
set -eu
cd "$(dirname "$0")/.."
ROAM=build/bin/roam
C=benchidle
SECS=${1:-60}
trap '"$ROAM" cluster down --name $C >/dev/null 2>&1' EXIT
"$ROAM" cluster down --name $C >/dev/null 2>&1 || true
"$ROAM" cluster up --name $C --nodes 4 >/dev/null
sleep 5  # let the membership form and the first load samples spread
pids=$("$ROAM" cluster status --name $C --json | jq -r '.nodes[].roamd_pid')
# Nanoseconds on CPU (all threads), from the scheduler's own accounting.
ticks() { local t=0 f; for f in /proc/$1/task/*/schedstat; do t=$((t + $(awk '{print $1}' "$f"))); done; echo $t; }
declare -A before
for p in $pids; do before[$p]=$(ticks "$p"); done
t0=$(date +%s%N)
sleep "$SECS"
t1=$(date +%s%N)
echo "idle roamd CPU over ${SECS}s, 4 nodes (share of one core; goal < 0.5%):"
total=0
for p in $pids; do
  d=$(( $(ticks "$p") - ${before[$p]} ))
  total=$((total + d))
  awk -v d="$d" -v ns="$((t1 - t0))" -v p="$p" \
    'BEGIN { printf "  roamd pid %-7s %6.3f%%\n", p, 100 * d / ns }'
done
awk -v d="$total" -v ns="$((t1 - t0))" \
  'BEGIN { printf "RESULT idle_cpu_per_roamd_percent=%.3f\n", 100 * d / ns / 4 }'
