#!/usr/bin/env bash
# What a job's own address costs the connections it makes (docs/
# MIGRATION.md, "An address of its own"): a job started with `roam run
# --address` runs in a cgroup whose connect hook (a BPF program,
# src/node/job_cgroup.h) binds each socket connecting into the subnet to
# the job's address. How much slower is a connect() through it?
#
# On a 4-node `roam cluster`, build/bin/tcp_conn_bench (bench/
# tcp_conn_bench.cc) accepts on n4 (outside roam) and, from n3, opens 2000
# connections one after another (socket + connect, each closed with a
# reset), the median and 99th percentile of each connect kept:
#   reference  a plain process inside n3 (outside roam)
#   job        a roam job placed on n3 (no address: no hook)
#   address    a roam job placed on n3 with --address auto (through the hook)
# Five rounds, the three interleaved, medians kept. The address job's
# connections must come from its address (checked: not n3's own).
#
# Goal (reported, never asserted): address/job <= 1.05 (the hook adds under
# 5% to a connect over the cluster's network). Output: a Markdown table,
# the goal, one RESULT line. About 30 s.
set -uo pipefail
cd "$(dirname "$0")/.."
source bench/lib/common.sh
bench_bin job_connect_bench
bench_need job_connect_bench jq
[ -x "$BIN/tcp_conn_bench" ] || { echo "job_connect_bench: $BIN/tcp_conn_bench not found; build first" >&2; exit 1; }
CLUSTER=jconn
bench_cluster_frame job_connect_bench roam-bench-jconn
N=2000

bench_plain_cluster
addr_of() { cx "$1" -- ip -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1 | head -1; }
N3=$(addr_of n3) N4=$(addr_of n4)

# The clients on CPU 0, the server on the last (as tcp_move_bench.sh does).
cx n4 -- taskset -c "$(($(nproc) - 1))" "$BIN/tcp_conn_bench" accept 9300 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; bench_cluster_cleanup' EXIT
sleep 0.5

# one KIND ROUND: a run of N connects; its line goes to $DIR/KIND.out.
one() {
  local out
  case $1 in
    ref) out=$(cx n3 -- taskset -c 0 "$BIN/tcp_conn_bench" connects "$N4" 9300 $N 2>&1) ;;
    job) out=$(cx n1 -- "$ROAM" run --on n3 -- taskset -c 0 "$BIN/tcp_conn_bench" connects "$N4" 9300 $N 2>&1) ;;
    address) out=$(cx n1 -- "$ROAM" run --on n3 --address auto -- taskset -c 0 "$BIN/tcp_conn_bench" connects "$N4" 9300 $N 2>&1) ;;
  esac
  grep -q '^connects=' <<<"$out" || { note "$1, round $2: $out"; return 1; }
  echo "$out" >>"$DIR/$1.out"
}
for round in 1 2 3 4 5; do
  for kind in ref job address; do one $kind $round || exit 1; done
done

# med KIND FIELD: the median of FIELD over the five rounds.
med() { sed -n "s/.* $2=\([0-9.]*\).*/\1/p" "$DIR/$1.out" | sort -g | sed -n 3p; }
src() { sed -n 's/.* source=\([0-9.]*\).*/\1/p' "$DIR/$1.out" | sort -u | tr '\n' ' '; }
echo
echo "| $N connects from n3 to n4 | connect median | 99th pct | source address |"
echo "|---|---|---|---|"
echo "| reference: a plain process | $(med ref med_us) us | $(med ref p99_us) us | $(src ref)|"
echo "| a roam job, no address | $(med job med_us) us | $(med job p99_us) us | $(src job)|"
echo "| a roam job with --address (through the hook) | $(med address med_us) us | $(med address p99_us) us | $(src address)|"
r() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
ratio=$(r "$(med address med_us)" "$(med job med_us)")
ref_ratio=$(r "$(med address med_us)" "$(med ref med_us)")
own=yes
for a in $(src address); do [ "$a" = "$N3" ] && own=no; done
echo
met() { if awk -v v="$1" 'BEGIN { exit !(v <= 1.05) }'; then echo met; else echo "NOT met"; fi; }
echo "- address/job: ${ratio}x (goal <= 1.05): $(met "$ratio"); address/reference: ${ref_ratio}x"
echo "- the address job's connections came from its own addresses, not n3's $N3: $own"
echo "RESULT job_connect n=$N ref_us=$(med ref med_us) job_us=$(med job med_us) address_us=$(med address med_us) address_over_job=$ratio own_source=$own"
[ "$own" = yes ]
