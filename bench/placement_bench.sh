#!/usr/bin/env bash
# Placement of a burst of CPU-bound jobs on a 4-node `roam cluster` with
# unequal CPU quotas (0.8/0.6/0.4/0.2 of a core, 2.0 in all: this machine's
# two cores), every figure against references measured in the same run:
#
#   roam loop   JOBS x `roam run -- awk ...` started at once by a shell loop
#               inside n1 (the home), each placed by roam (--best);
#   roam make   the same through `make -j JOBS`;
#   round robin the same with `--on nK`, K = 1..4 in turn: spread evenly,
#               blind to the shares;
#   home only   the JOBS awk processes started at once inside n1 without
#               roam: what the user has without a cluster;
#   ideal       JOBS x the CPU time of one job / 2.0 cores (the total share):
#               perfectly divisible work, no start-up, no transfer;
#   best split  the shortest makespan of whole jobs split over the nodes'
#               shares (placement cannot split a job; moving running jobs,
#               the balancer's work, can do better).
#
# Each job is `awk` summing WORK numbers; its CPU time is measured alone
# on the host (one core, nothing else running) before the cases. Makespan:
# wall time from the first start to the last end, inside n1. Each case runs
# ROUNDS times in turn (noise falls on all alike); the median is reported.
# Every job's output is checked, and where roam put it (its `uname -n`).
#
# Goals: roam loop and roam make within 1.25x of the best split (and so
# ~1.4x of the ideal), and faster than home only. Reported, never asserted.
# Output: a Markdown table for docs/BENCHMARKS.md, then RESULT lines.
#
# Usage: bench/placement_bench.sh [--jobs N] [--work N] [--rounds N] [--name CLUSTER]
#        (defaults: 12 jobs, 20000000 numbers (~2 s of CPU each here),
#        3 rounds, cluster pbench; about 4 minutes)
#        ROAM_BIN overrides build/bin (BUILD overrides build).
# Exit status: 0 if every case ran and every output checked out, else 1.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
. bench/lib/common.sh
bench_bin placement_bench.sh

JOBS=12
WORK=20000000
ROUNDS=3
CLUSTER=pbench
SHARES=(0.8 0.6 0.4 0.2)
usage() {
  echo "usage: bench/placement_bench.sh [--jobs N] [--work N] [--rounds N] [--name CLUSTER]" >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case $1 in
    --jobs) JOBS=${2:-}; shift 2 || usage ;;
    --work) WORK=${2:-}; shift 2 || usage ;;
    --rounds) ROUNDS=${2:-}; shift 2 || usage ;;
    --name) CLUSTER=${2:-}; shift 2 || usage ;;
    *) usage ;;
  esac
done
[[ $JOBS =~ ^[1-9][0-9]*$ && $WORK =~ ^[1-9][0-9]*$ && $ROUNDS =~ ^[1-9][0-9]*$ ]] || usage
bench_need placement_bench.sh jq make awk
bench_cluster_frame placement_bench roam-place-bench
FAILED=0

cat >"$DIR/job.sh" <<'EOF'
uname -n
exec awk -v n="$1" 'BEGIN { for (i = 0; i < n; i++) s += i % 7; print s }'
EOF
SUM=$(awk -v n="$WORK" 'BEGIN { for (i = 0; i < n; i++) s += i % 7; print s }')

# One job's CPU time alone (median of 3), in seconds.
cpu=()
for _ in 1 2 3; do
  cpu+=("$( { TIMEFORMAT='%3U %3S'; time awk -v n="$WORK" 'BEGIN { for (i = 0; i < n; i++) s += i % 7 }' ; } 2>&1 | awk '{print $1 + $2}')")
done
JOB_CPU=$(printf '%s\n' "${cpu[@]}" | sort -g | sed -n 2p)
IDEAL=$(awk -v j="$JOBS" -v c="$JOB_CPU" 'BEGIN { printf "%.2f", j * c / 2.0 }')
# The best split of whole jobs over the shares (every split of JOBS over 4).
BEST=$(awk -v j="$JOBS" -v c="$JOB_CPU" -v s="${SHARES[*]}" 'BEGIN {
  split(s, sh, " "); best = 1e18
  for (a = 0; a <= j; a++) for (b = 0; a + b <= j; b++) for (x = 0; a + b + x <= j; x++) {
    d = j - a - b - x; m = a / sh[1]
    if (b / sh[2] > m) m = b / sh[2]; if (x / sh[3] > m) m = x / sh[3]; if (d / sh[4] > m) m = d / sh[4]
    if (m < best) best = m }
  printf "%.2f", best * c }')

bench_quota_cluster
# Placement alone: no process moves once started (bench/balance_bench.sh
# measures the balancer).
for n in n1 n2 n3 n4; do cx n1 -- "$ROAM" node balance off "$n" >/dev/null || { note "balance off $n failed"; exit 1; }; done
settle() {  # until no node is busy in n1's view (at most 30 s)
  local i
  for i in $(seq 150); do
    cx n1 -- "$ROAM" nodes --json | jq -e '.counters.placing == 0 and ([.nodes[] | select((.cpu_util // 1) > 0.1)] | length == 0)' >/dev/null && return
    sleep 0.2
  done
}

# run_case CASE ROUND: runs the jobs one way inside n1; prints the makespan
# in seconds and the job count per node ("n1:5 n2:4 ..."), and checks the
# outputs.
run_case() {
  local case=$1 d="$DIR/$1.$2"
  mkdir -p "$d"
  settle
  local start end
  start=$(date +%s%N)
  case $case in
    loop) cx n1 -- bash -c 'for i in $(seq "$1"); do "$2" run -- sh "$3" "$4" >"$5/$i.out" 2>"$5/$i.err" & done; wait' \
            _ "$JOBS" "$ROAM" "$DIR/job.sh" "$WORK" "$d" ;;
    make)
      {
        printf 'all:'; for i in $(seq "$JOBS"); do printf ' j%d' "$i"; done; printf '\n'
        for i in $(seq "$JOBS"); do
          printf 'j%d:\n\t%s run -- sh %s %s >%s/%d.out 2>%s/%d.err\n' "$i" "$ROAM" "$DIR/job.sh" "$WORK" "$d" "$i" "$d" "$i"
        done
      } >"$d.mk"
      cx n1 -- make -s -j "$JOBS" -f "$d.mk" ;;
    rr) cx n1 -- bash -c 'for i in $(seq "$1"); do "$2" run --on n$(( (i - 1) % 4 + 1 )) -- sh "$3" "$4" >"$5/$i.out" 2>"$5/$i.err" & done; wait' \
          _ "$JOBS" "$ROAM" "$DIR/job.sh" "$WORK" "$d" ;;
    home) cx n1 -- bash -c 'for i in $(seq "$1"); do sh "$2" "$3" >"$4/$i.out" 2>"$4/$i.err" & done; wait' \
            _ "$JOBS" "$DIR/job.sh" "$WORK" "$d" ;;
  esac
  end=$(date +%s%N)
  local i good=0
  for i in $(seq "$JOBS"); do
    [ "$(sed -n 2p "$d/$i.out" 2>/dev/null)" = "$SUM" ] && [ ! -s "$d/$i.err" ] && good=$((good + 1))
  done
  [ "$good" = "$JOBS" ] || { note "$case round $2: $good of $JOBS jobs gave the right output"; FAILED=1; }
  local where
  where=$(for n in n1 n2 n3 n4; do printf '%s:%s ' "$n" "$(cat "$d"/*.out 2>/dev/null | grep -cx "$n")"; done)
  echo "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", (b - a) / 1e9 }') ${where% }"
}

declare -A SPANS WHERE
CASES=(loop make rr home)
for r in $(seq "$ROUNDS"); do
  for c in "${CASES[@]}"; do
    out=$(run_case "$c" "$r")
    SPANS[$c]+="${out%% *} "
    WHERE[$c]+="[${out#* }] "
    note "round $r, $c: $out"
  done
done

median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
label() {
  case $1 in
    loop) echo "roam run, shell loop (placed by roam)" ;;
    make) echo "roam run, make -j$JOBS (placed by roam)" ;;
    rr) echo "roam run --on n1..n4 in turn" ;;
    home) echo "all at home, without roam" ;;
  esac
}
echo
echo "$JOBS jobs of ${JOB_CPU} s of CPU each, quotas ${SHARES[*]}; ideal ${IDEAL} s, best split of whole jobs ${BEST} s; median of $ROUNDS rounds"
echo
echo "| case | makespan | / ideal | / best split | jobs per node (n1 n2 n3 n4), each round |"
echo "|---|---|---|---|---|"
for c in "${CASES[@]}"; do
  m=$(median "${SPANS[$c]}")
  echo "| $(label "$c") | ${m} s | $(ratio "$m" "$IDEAL")x | $(ratio "$m" "$BEST")x | ${WHERE[$c]% } |"
done
echo "| ideal (JOBS x CPU time / 2.0 cores) | ${IDEAL} s | 1.00x | | |"
echo "| best split of whole jobs | ${BEST} s | $(ratio "$BEST" "$IDEAL")x | 1.00x | |"
echo
goal_met() { awk -v v="$1" -v b="$2" 'BEGIN { print (v <= b) ? "met" : "not met" }'; }
loop=$(median "${SPANS[loop]}"); make=$(median "${SPANS[make]}"); home=$(median "${SPANS[home]}")
echo "Goal: roam loop <= 1.25x best split: $(goal_met "$(ratio "$loop" "$BEST")" 1.25); roam make -j: $(goal_met "$(ratio "$make" "$BEST")" 1.25); roam loop faster than home only: $(goal_met "$loop" "$home")"
for c in "${CASES[@]}"; do echo "RESULT placement $c makespan_s=$(median "${SPANS[$c]}") ideal_s=$IDEAL best_s=$BEST"; done
exit $FAILED
