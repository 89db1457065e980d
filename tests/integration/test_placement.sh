#!/usr/bin/env bash
# Placement of a burst on a real 4-node `roam cluster` with unequal CPU
# quotas (0.8/0.6/0.4/0.2 of a core): N `roam run`s started at once from n1,
# by a shell loop or by `make -j`, spread over the nodes in proportion to
# their shares (each node within one job of N x share / total share), and
# not, as before, nearly all on one node. A blocked node gets none.
#
# The jobs are real programs (sh, awk): each prints the node it runs on,
# waits at a barrier until the whole burst has been placed (so that no job
# ends and frees its place while the burst is still being placed), then
# computes. Makespans are reported, never asserted. Needs root.
set -u
source "$(dirname "$0")/lib.sh"
CLUSTER=tplace
SHARES=(0.8 0.6 0.4 0.2)
CX_LIMIT=120
test_frame place

# job.sh GO N: prints its node, waits for the file GO, then sums N numbers.
cat >"$DATA/job.sh" <<'EOF'
uname -n
while [ ! -e "$1" ]; do sleep 0.05; done
awk -v n="$2" 'BEGIN { for (i = 0; i < n; i++) s += i % 7; print s }'
EOF

"$ROAM" cluster down --name $CLUSTER >/dev/null 2>&1
if ! "$ROAM" cluster up --name $CLUSTER --nodes 4 --cpu-quota "$(IFS=,; echo "${SHARES[*]}")" >/dev/null; then
  fail "cluster up"; finish; exit 1
fi
wait_until 20 full_mesh n1 n2 n3 n4 >/dev/null || fail "cluster never formed"
# The same per-core speed everywhere: calibration alone varies by ~15%, and
# the shares are what this test is about.
for n in n1 n2 n3 n4; do cx "$n" -- "$ROAM" node speed 1000 >/dev/null || fail "roam node speed on $n"; done
speeds_set() {
  nodes_json n1 | jq -e '[.nodes[] | select(.speed == 1000 and .cpu_share > 0)] | length == 4' >/dev/null
}
wait_until 20 speeds_set >/dev/null || fail "n1 never saw every node's speed and share"

# settled: nothing of ours left, nothing being placed, every node idle in
# n1's view.
settled() {
  local j
  j=$(nodes_json n1) || return 1
  jq -e '.counters.placing == 0 and ([.nodes[] | select((.cpu_util // 1) > 0.15)] | length == 0)' <<<"$j" >/dev/null &&
    [ -z "$(cx n1 -- "$ROAM" ps --all 2>/dev/null | tail -n +2)" ]
}

# burst NAME STYLE N WORK: starts N jobs at once from n1 (STYLE loop: a
# shell loop with &; make: make -j N), waits until all have printed their
# node, opens the barrier and waits for the end. Sets COUNT[n1..n4] and
# MAKESPAN (seconds from the barrier to the last job's end).
declare -A COUNT
burst() {
  local name=$1 style=$2 n=$3 work=$4 d="$DATA/$1"
  mkdir -p "$d"
  wait_until 30 settled >/dev/null || fail "$name: the cluster did not settle before the burst"
  [ -n "$BEFORE_BURST" ] && $BEFORE_BURST
  if [ "$style" = make ]; then
    {
      printf 'all:'; for i in $(seq "$n"); do printf ' j%d' "$i"; done; printf '\n'
      for i in $(seq "$n"); do
        printf 'j%d:\n\t%s run -- sh %s %s %s >%s/%d.out 2>%s/%d.err\n' \
          "$i" "$ROAM" "$DATA/job.sh" "$d/go" "$work" "$d" "$i" "$d" "$i"
      done
    } >"$d/Makefile"
    cx n1 -- make -s -j "$n" -f "$d/Makefile" >"$d/driver.out" 2>&1 &
  else
    cx n1 -- bash -c 'for i in $(seq "$1"); do "$2" run -- sh "$3" "$4/go" "$5" >"$4/$i.out" 2>"$4/$i.err" & done; wait' \
      _ "$n" "$ROAM" "$DATA/job.sh" "$d" "$work" >"$d/driver.out" 2>&1 &
  fi
  local bg=$!
  BG_PIDS+=("$bg")
  placed() { [ "$(cat "$d"/*.out 2>/dev/null | grep -c '^n[1-4]$')" -ge "$n" ]; }
  wait_until 60 placed >/dev/null || fail "$name: not every job started within 60 s"
  # Every job is the home's to show (and to move or kill): a record lost
  # while its process runs is a job roam forgot.
  local shown; shown=$(cx n1 -- "$ROAM" ps 2>/dev/null | tail -n +2 | wc -l)
  check "$name: roam ps at home shows all $n jobs while they run (it shows $shown)" [ "$shown" = "$n" ]
  local t0; t0=$(now_ms)
  touch "$d/go"
  wait "$bg"; local rc=$?
  MAKESPAN=$(echo "$(( $(now_ms) - t0 ))" | awk '{printf "%.1f", $1/1000}')
  local sum; sum=$(awk -v n="$work" 'BEGIN { for (i = 0; i < n; i++) s += i % 7; print s }')
  local good=0 i
  for i in $(seq "$n"); do
    [ "$(sed -n 2p "$d/$i.out" 2>/dev/null)" = "$sum" ] && [ ! -s "$d/$i.err" ] && good=$((good + 1))
  done
  check "$name: all $n jobs ended with the right result and nothing on stderr ($good of $n; driver exit $rc)" \
    [ "$good" = "$n" -a "$rc" = 0 ]
  for x in n1 n2 n3 n4; do COUNT[$x]=$(cat "$d"/*.out 2>/dev/null | grep -cx "$x"); done
  # A guest that refused sends the job to the next candidate: say so.
  RETRIES=$(cx n1 -- grep -h '; trying ' /run/roam/roamd.log 2>/dev/null | tail -n +$((SEEN_RETRIES + 1)) | cut -c1-200 | tr '\n' '|')
  SEEN_RETRIES=$(cx n1 -- grep -c '; trying ' /run/roam/roamd.log 2>/dev/null)
}
SEEN_RETRIES=0
RETRIES=
BEFORE_BURST=""

# fair N NODES...: every listed node got within one job of N x share / the
# listed nodes' total share.
fair() {
  local n=$1; shift
  local total=0 x i
  for x in "$@"; do i=${x#n}; total=$(awk -v a="$total" -v b="${SHARES[$((i - 1))]}" 'BEGIN { print a + b }'); done
  for x in "$@"; do
    i=${x#n}
    awk -v c="${COUNT[$x]}" -v n="$n" -v s="${SHARES[$((i - 1))]}" -v t="$total" \
      'BEGIN { f = n * s / t; exit !(c - f <= 1 && f - c <= 1) }' || return 1
  done
}
counts() { echo "n1 ${COUNT[n1]}, n2 ${COUNT[n2]}, n3 ${COUNT[n3]}, n4 ${COUNT[n4]}${RETRIES:+; retried: $RETRIES}"; }

burst one loop 1 2000000
check "a lone job runs at home, the biggest share ($(counts))" [ "${COUNT[n1]}" = 1 ]

burst four make 4 2000000
check "make -j4: each node within one job of its share of 4 ($(counts))" fair 4 n1 n2 n3 n4

burst twelve loop 12 5000000
check "a shell loop of 12: each node within one job of its share ($(counts); makespan ${MAKESPAN}s)" fair 12 n1 n2 n3 n4
check "a shell loop of 12: no node holds more than 6 jobs ($(counts))" \
  [ "${COUNT[n1]}" -le 6 -a "${COUNT[n2]}" -le 6 -a "${COUNT[n3]}" -le 6 -a "${COUNT[n4]}" -le 6 ]

burst twelvemake make 12 5000000
check "make -j12: each node within one job of its share ($(counts); makespan ${MAKESPAN}s)" fair 12 n1 n2 n3 n4

burst fifty loop 50 1500000
check "a shell loop of 50: each node within one job of its share ($(counts); makespan ${MAKESPAN}s)" fair 50 n1 n2 n3 n4

# A blocked node takes none; the others share the burst by their shares.
cx n2 -- "$ROAM" node block >/dev/null || fail "roam node block on n2"
blocked_seen() { [ "$(json_field n1 n2 accepts_guests)" = false ]; }
wait_until 20 blocked_seen >/dev/null || fail "n1 never saw n2 blocked"
burst blocked loop 12 2000000
none_on_n2_rest_fair() { [ "${COUNT[n2]}" = 0 ] && fair 12 n1 n3 n4; }
check "n2 blocked: none on n2, the others within one job of their share of 12 ($(counts))" none_on_n2_rest_fair
cx n2 -- "$ROAM" node unblock >/dev/null
unblocked_seen() { [ "$(json_field n1 n2 accepts_guests)" = true ]; }
wait_until 20 unblocked_seen >/dev/null || fail "n1 never saw n2 unblocked"

# n4's roamd dies just before a burst, while n1 still holds it alive: the
# job placed there cannot start, its hold is released and the next node
# takes it; every job runs once, none on n4.
kill_n4() { local p; p=$(roamd_pid n4); [ "$p" -gt 1 ] && kill -9 "$p"; }
BEFORE_BURST=kill_n4
burst deadnode loop 12 2000000
BEFORE_BURST=""
dead_ok() { [ "${COUNT[n4]}" = 0 ] && [ $((COUNT[n1] + COUNT[n2] + COUNT[n3])) = 12 ] && grep -q 'n4' <<<"$RETRIES"; }
check "n4's roamd killed at the burst: none on n4, all 12 elsewhere, the job sent there retried ($(counts))" dead_ok

check "nothing is left being placed on n1 (placing $(counter n1 placing))" [ "$(counter n1 placing)" = 0 ]
finish
