#!/usr/bin/env bash
# Compression of moves (node/page_codec.h): `roam migrate` of a running
# process between two guest nodes of a 3-node `roam cluster` whose links
# are shaped to a LAN's speed (tc tbf on each node's eth0, 1 Gbit/s by
# default), with roamd.conf `compress = off` and then `compress = auto`,
# against a reference measured in the same run: the process's resident
# bytes over one raw TCP connection between the same two nodes, through the
# same shaping (build/bin/tcp_pipe_ref send/recv).
#
# Two processes per setting, each started with `roam run --on n2` from n1
# and moved n2 -> n3 -> n2:
#   heap     python3 holding 2,000,000 small strings in a list (~250 MiB of
#            interpreter heap: objects, pointers, text; compresses well);
#            on SIGUSR2 after its moves it checks every string and says so
#   random   build/bin/ckpt_memhog 256M (random pages: compresses not at all;
#            auto must leave it as fast as off)
# Figures per case: median total_ms and frozen_ms of the two moves, bytes
# sent over the link, bytes that went compressed, and total / reference.
# Each process must end as it should after its moves (python checks its
# strings and exits 0; the memhog verifies every page, then is killed).
#
# Goals (reported, never asserted): compression only where it pays — the
# heap moves faster with auto than with off, and random data moves within
# 10% of off (the trials cost little and it goes raw).
# Usage: bench/compress_bench.sh [--rate RATE] (tc rate, e.g. 1gbit, 100mbit)
# Needs root, jq, tc. Exit 0 if every move and check passed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
. bench/lib/common.sh
bench_bin compress_bench.sh
CLUSTER=cbench
RATE=1gbit
while [ $# -gt 0 ]; do
  case $1 in
    --rate) RATE=${2:-}; shift 2 ;;
    *) echo "usage: bench/compress_bench.sh [--rate RATE]" >&2; exit 2 ;;
  esac
done
for c in jq tc timeout; do command -v "$c" >/dev/null || { echo "compress_bench.sh: missing $c" >&2; exit 1; }; done
[ "$(id -u)" -eq 0 ] || { echo "compress_bench.sh: needs root (roam cluster)" >&2; exit 1; }
close_extra_fds

WORK=$(mktemp -d /var/tmp/roam-compress-bench.XXXXXX)
chmod 755 "$WORK"
cleanup() {
  "$ROAM" cluster down --name "$CLUSTER" >/dev/null 2>&1
  wait 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
FAILED=0
note() { echo "compress_bench: $*" >&2; }
failed() { note "$*"; FAILED=1; }
cx() { timeout -k 5 300 "$ROAM" cluster exec --name "$CLUSTER" "$@"; }
median() { printf '%s\n' "$@" | awk 'NF' | sort -g | awk '{ v[NR] = $1 } END { if (NR) printf "%.1f\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
mib() { awk -v n="$1" 'BEGIN { printf "%.1f MiB", n / 1048576 }'; }
alive_everywhere() {
  local n
  for n in n1 n2 n3; do
    [ "$(cx "$n" -- "$ROAM" nodes --json </dev/null 2>/dev/null | jq '[.nodes[] | select(.state == "alive")] | length' 2>/dev/null)" = 3 ] || return 1
  done
}
wait_for() {  # wait_for SECONDS CMD...
  local i
  for ((i = 0; i < $1 * 5; i++)); do "${@:2}" && return 0; sleep 0.2; done
  return 1
}

note "$(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), links shaped to $RATE"
"$ROAM" cluster down --name "$CLUSTER" >/dev/null 2>&1
"$ROAM" cluster up --name "$CLUSTER" --nodes 3 --shared "$WORK" >"$WORK/up.log" 2>&1 || { note "cluster up failed"; exit 1; }
wait_for 30 alive_everywhere || { note "the nodes did not see each other"; exit 1; }
for n in n2 n3; do
  cx "$n" -- tc qdisc replace dev eth0 root tbf rate "$RATE" burst 256kb latency 50ms || { note "tc on $n failed"; exit 1; }
done
# n1's PIDs start high, so that a process's PID (which it keeps on every
# node) is free on n2 and n3.
cx n1 -- sh -c 'echo 20000 >/proc/sys/kernel/ns_last_pid' || { note "cannot set n1's ns_last_pid"; exit 1; }
ADDR3=$(cx n3 -- sh -c "ip -4 -o addr show dev eth0 | awk '{print \$4}' | cut -d/ -f1")

# Restarts every roamd with `compress = MODE` (before any process runs).
set_mode() {
  local n
  for n in n1 n2 n3; do
    cx "$n" -- sh -c "sed -i '/^compress *=/d' /run/roam/roamd.conf && echo 'compress = $1' >>/run/roam/roamd.conf && pkill -x roamd" || true
  done
  for n in n1 n2 n3; do
    wait_for 10 sh -c "[ \"\$('$ROAM' cluster status --name $CLUSTER --json | jq -r '.nodes[] | select(.name==\"$n\") | .state')\" = stopped ]" ||
      note "roamd on $n did not stop"
    cx "$n" -- "$BIN/roamd" --daemon >/dev/null 2>&1
  done
  wait_for 30 alive_everywhere || failed "the nodes did not come back with compress = $1"
}

cat >"$WORK/heap.py" <<'PY'
import signal, time
def item(i):
    return ("%d:" % i) + "roam-" * (i % 7) + str(i * 7919)
xs = [item(i) for i in range(2_000_000)]
asked = False
def ask(*_):
    global asked
    asked = True
signal.signal(signal.SIGUSR2, ask)
print("ready", flush=True)
while not asked:
    time.sleep(0.05)
print("heap ok" if all(x == item(i) for i, x in enumerate(xs)) else "heap damaged", flush=True)
PY

# reference BYTES: ms to send BYTES of random data n2 -> n3 over raw TCP.
reference() {
  head -c "$1" /dev/urandom >"$WORK/ref.bin"
  cx n3 -- sh -c "'$BIN/tcp_pipe_ref' recv $ADDR3 7999 >/dev/null 2>'$WORK/ref.err'" &
  local r=$!
  cx n2 -- "$BIN/tcp_pipe_ref" send "$ADDR3" 7999 "$WORK/ref.bin" 2>/dev/null
  wait "$r"
  sed -n 's/.*ns=\([0-9]*\).*/\1/p' "$WORK/ref.err" | awk '{ printf "%.1f\n", $1 / 1e6 }'
}

declare -A TOTAL FROZEN SENT COMPRESSED REF RSS
run_case() {  # run_case MODE KIND
  local mode=$1 kind=$2 p gpid out totals=() frozens=() sent=0 comp=0 rss to
  rm -f "$WORK/$kind.out" "$WORK/$kind.pid" "$WORK/$kind.rc"
  if [ "$kind" = heap ]; then
    cx n1 -- sh -c "'$ROAM' run --on n2 -- python3 '$WORK/heap.py' >'$WORK/$kind.out' 2>&1 & echo \$! >'$WORK/$kind.pid'; wait \$!; echo \$? >'$WORK/$kind.rc'" 2>/dev/null &
  else
    cx n1 -- sh -c "'$ROAM' run --on n2 -- '$BIN/ckpt_memhog' 256M --report '$WORK/hog.report' >'$WORK/$kind.out' 2>&1 & echo \$! >'$WORK/$kind.pid'; wait \$!; echo \$? >'$WORK/$kind.rc'" 2>/dev/null &
  fi
  wait_for 60 grep -qi "ready" "$WORK/$kind.out" 2>/dev/null || { failed "$kind did not start: $(head -c 200 "$WORK/$kind.out")"; return; }
  p=$(cat "$WORK/$kind.pid"); gpid=n1:$p
  sleep 1.5  # roam ps's figures are a second old
  rss=$(cx n1 -- "$ROAM" ps --json | jq ".processes[] | select(.gpid==\"$gpid\") | .rss_bytes")
  [ -n "${REF[$kind]:-}" ] || REF[$kind]=$(reference "$rss")
  RSS[$kind]=$rss
  for to in n3 n2; do
    wait_for 10 sh -c "! '$ROAM' cluster exec --name $CLUSTER $to -- ps -p $p >/dev/null 2>&1"
    out=$(cx n1 -- "$ROAM" migrate "$gpid" "$to" --json 2>&1) || { failed "$mode $kind: move to $to failed: $out"; continue; }
    totals+=("$(jq .total_ms <<<"$out")"); frozens+=("$(jq .frozen_ms <<<"$out")")
    sent=$((sent + $(jq .bytes_sent <<<"$out"))); comp=$((comp + $(jq .bytes_compressed <<<"$out")))
  done
  if [ "$kind" = heap ]; then
    cx n1 -- "$ROAM" kill -s USR2 "$gpid" >/dev/null
    wait_for 60 grep -q "^heap" "$WORK/$kind.out" 2>/dev/null && grep -q "heap ok" "$WORK/$kind.out" ||
      failed "$mode heap: its check after the moves: $(tail -c 200 "$WORK/$kind.out")"
  else
    rm -f "$WORK/hog.report"
    cx n1 -- "$ROAM" kill -s USR2 "$gpid" >/dev/null
    wait_for 60 grep -q "verify=" "$WORK/hog.report" 2>/dev/null && grep -q "verify=ok" "$WORK/hog.report" ||
      failed "$mode random: verify after the moves: $(cat "$WORK/hog.report" 2>/dev/null)"
    cx n1 -- "$ROAM" kill -s KILL "$gpid" >/dev/null 2>&1
  fi
  wait 2>/dev/null
  wait_for 10 test -s "$WORK/$kind.rc"
  TOTAL[$mode.$kind]=$(median "${totals[@]}"); FROZEN[$mode.$kind]=$(median "${frozens[@]}")
  SENT[$mode.$kind]=$((sent / 2)); COMPRESSED[$mode.$kind]=$((comp / 2))
  note "$mode $kind: totals ${totals[*]} ms, frozen ${frozens[*]} ms, $(mib $((sent / 2))) sent per move, reference ${REF[$kind]} ms"
}

for mode in off auto; do
  set_mode "$mode"
  for kind in heap random; do run_case "$mode" "$kind"; done
done

echo "| process (RSS) | compress | total | frozen | sent per move | of it compressed | total / raw TCP of its RSS |"
echo "|---|---|---|---|---|---|---|"
for kind in heap random; do
  for mode in off auto; do
    t=${TOTAL[$mode.$kind]:-}
    echo "| $kind ($(mib "${RSS[$kind]:-0}")) | $mode | ${t:--} ms | ${FROZEN[$mode.$kind]:--} ms | $(mib "${SENT[$mode.$kind]:-0}") | $(mib "${COMPRESSED[$mode.$kind]:-0}") | $(awk -v a="$t" -v b="${REF[$kind]:-}" 'BEGIN { if (a == "" || b == "" || b == 0) print "-"; else printf "%.2fx", a / b }') |"
  done
done
speed() { awk -v a="${TOTAL[auto.$1]:-}" -v b="${TOTAL[off.$1]:-}" 'BEGIN { if (a == "" || b == "" || b == 0) print ""; else printf "%.2f", a / b }'; }
h=$(speed heap); r=$(speed random)
echo
echo "- heap, auto / off: ${h:--}x (goal < 1x, it pays: $(awk -v v="$h" 'BEGIN { print (v == "") ? "not measured" : (v < 1) ? "met" : "NOT met" }'))"
echo "- random, auto / off: ${r:--}x (goal <= 1.1x, it costs nothing: $(awk -v v="$r" 'BEGIN { print (v == "") ? "not measured" : (v <= 1.1) ? "met" : "NOT met" }'))"
echo "RESULT compress rate=$RATE heap_off_ms=${TOTAL[off.heap]:-} heap_auto_ms=${TOTAL[auto.heap]:-} random_off_ms=${TOTAL[off.random]:-} random_auto_ms=${TOTAL[auto.random]:-} ref_heap_ms=${REF[heap]:-} ref_random_ms=${REF[random]:-}"
exit $FAILED
