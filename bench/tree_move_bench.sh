#!/usr/bin/env bash
# What a job's shape adds to a move's frozen window, on a 4-node `roam
# cluster`: the same printing job (a numbered line every 10 ms, 1,200
# lines, python3) alone, in a tree of two processes (`sh -c "...; true"`),
# in a tree holding a pseudo-terminal pair (`script -qfec ... /dev/null`:
# src/ckpt/file_pty.cc), alone in a working directory removed under it, and
# as the child of a python3 parent that waits for it with wait(2), and
# through a pidfd in an epoll set (src/ckpt/file_pidfd.cc).
# Each is run once at home undisturbed (the reference output), then started
# with `roam run --on n2` and moved 12 times n3, home, n4, n2, ... 0.5 s
# apart; its output and exit status must equal the reference's.
#
# Reference: the job alone, in the same run. Per shape: the moves made,
# frozen_ms of `roam migrate --json` (median, min, max) and the median's
# ratio to the reference's, and whether the output was identical. Reported,
# never asserted. One RESULT line per shape. About 4 minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
source bench/lib/common.sh
bench_bin tree_move_bench
bench_need tree_move_bench jq python3 script
CLUSTER=treemv
bench_cluster_frame tree_move_bench roam-bench-treemv
MOVES=${MOVES:-12}

bench_plain_cluster
cat >"$DIR/print.py" <<'PY'
import time
for i in range(1200):
    print(i, flush=True)
    time.sleep(0.01)
PY
cat >"$DIR/watch.py" <<'PY'
import os, select, subprocess, sys
through_pidfd = sys.argv[1] == "pidfd"
child = subprocess.Popen(sys.argv[2:])
if through_pidfd:
    ep = select.epoll()
    ep.register(os.pidfd_open(child.pid), select.EPOLLIN)
    ep.poll()
sys.exit(child.wait())
PY
PY3=/usr/bin/python3  # not a shim that would look for its directory
# The job, inside n1: the reference run, then the moved run; prints
# "moves frozen_ms..." and "same" or "differs" (output and exit status).
cat >"$DIR/route.sh" <<'SH'
dir=$1 name=$2 moves=$3; shift 3
cd "$dir" || exit 1
"$@" >"$name.ref" 2>&1; want=$?
"$ROAM" run --on n2 -- "$@" </dev/null >"$name.out" 2>&1 &
run=$!
for _ in $(seq 50); do
  gpid=$("$ROAM" ps --json | jq -r --arg p "$run" '.processes[] | select(.gpid == "n1:" + $p) | .gpid')
  [ -n "$gpid" ] && break
  sleep 0.1
done
sleep 0.5
route=(n3 home n4 n2) frozen=()
for ((i = 0; i < moves; i++)); do
  j=$("$ROAM" migrate --json "n1:$run" "${route[$((i % 4))]}" 2>/dev/null) && frozen+=("$(jq -r .frozen_ms <<<"$j")")
  sleep 0.5
done
wait $run; rc=$?
echo "${#frozen[@]} ${frozen[*]}"
if cmp -s "$name.ref" "$name.out" && [ $rc = $want ]; then echo same; else echo "differs (exit $rc, want $want)"; fi
SH

# shape NAME CMD...: one shape, its table row; the first is the reference.
REF=
shape() {
  local name=$1 out moves frozen same stats
  shift
  out=$(cx n1 -- env ROAM="$ROAM" bash "$DIR/route.sh" "$DIR" "$name" "$MOVES" "$@" 2>&1)
  read -r moves frozen <<<"$(head -1 <<<"$out")"
  same=$(sed -n 2p <<<"$out")
  stats=$(tr ' ' '\n' <<<"$frozen" | sort -n | awk 'NF {a[n++] = $1} END {if (n) printf "%s %s %s", a[int(n / 2)], a[0], a[n - 1]; else print "- - -"}')
  read -r med lo hi <<<"$stats"
  [ -z "$REF" ] && REF=$med
  local ratio=-
  [ "$med" != - ] && [ "$REF" != - ] && ratio=$(awk -v a="$med" -v b="$REF" 'BEGIN {printf "%.2f", a / b}')
  printf '| %s | %s of %s | %s | %s-%s | %s | %s |\n' "$name" "$moves" "$MOVES" "$med" "$lo" "$hi" "$ratio" "$same"
  RESULTS+=("RESULT tree_move_bench shape=$name moves=$moves frozen_median_ms=$med frozen_min_ms=$lo frozen_max_ms=$hi ratio=$ratio output=${same%% *}")
}
RESULTS=()

echo "| job | moves | frozen ms, median | min-max | x alone | output |"
echo "|---|---|---|---|---|---|"
shape alone "$PY3" "$DIR/print.py"
shape two-processes sh -c "$PY3 $DIR/print.py; true"
shape pty-pair script -qfec "$PY3 $DIR/print.py" /dev/null
shape cwd-removed sh -c "mkdir $DIR/gone && cd $DIR/gone && rmdir $DIR/gone && exec $PY3 $DIR/print.py"
shape python-parent "$PY3" "$DIR/watch.py" wait "$PY3" "$DIR/print.py"
shape pidfd-parent "$PY3" "$DIR/watch.py" pidfd "$PY3" "$DIR/print.py"
echo
printf '%s\n' "${RESULTS[@]}"
