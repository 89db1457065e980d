#!/usr/bin/env bash
# Live migration: `roam migrate` of a running process between guest nodes of
# a 3-node `roam cluster` (n1 the home, n2 and n3 guests), against a
# reference measured in the same run. The process is build/bin/ckpt_memhog,
# started from n1 with `roam run --on n2`, holding 16 KiB, 64 MiB or 1 GiB of
# random content (every page touched, so zero-page elision or compression
# cannot cheat).
#
# Per case, a fresh memhog is moved n2 -> n3 -> n2 -> n3 (3 moves; 2 for
# 1 GiB: n2 -> n3 -> n2; case 64M-home: n2 -> home -> n2 -> home, where its
# deputy becomes it, docs/MIGRATION.md; case 64M-tree: the 64 MiB held by
# the root's child, `ckpt_memhog --in-child`, as under `sh -c`; case 16K-tty:
# a `roam run -t` job, on a pseudo-terminal of its own, n2 -> n3 -> home -> n2;
# case 64M-8T: the memhog with 7 more threads, n2 -> n3 -> home -> n2), each
# move `roam migrate GPID NODE --json` run by a
# bash inside n1 and timed there with $EPOCHREALTIME. Figures are medians
# over the moves:
#   total    total_ms of the JSON (the move as roamd timed it)
#   frozen   frozen_ms (the process stopped: today's move is stop-and-copy,
#            so frozen ~ total)
#   wall     the `roam migrate` command's own wall time inside n1 (the user's
#            end-to-end figure: CLI start, control round trips, the move)
#   bytes    bytes_sent; dump_ms and restore_ms go to the RESULT lines
# Before each move the script waits until the target holds no process with
# the memhog's PID: right after a move the old, killed copy may still be
# exiting on the source (for 1 GiB, ~0.1 s), and a move straight back to it
# is refused with "pid N is taken on NODE". That wait is not timed into any
# figure; when it was needed it is printed as a note (and every wait goes to
# the RESULT line as old_copy_waits_ms).
# After the moves, `roam kill -s USR2` makes the memhog check every touched
# page and rewrite its report file ("verify=ok ..."); then it is killed with
# `roam kill -s KILL` and its `roam run` must end with 137.
#
# The 1 GiB case runs twice: idle (waiting in sigsuspend), and rewriting
# 16 MiB/s of its pages while moved (`ckpt_memhog --dirty-rate 16M`: ~5 ms
# sleeps, each page rewritten with the content of its next generation; see
# bench/ckpt_memhog.cc). The verify stays exact in that case too: the memhog
# keeps a generation counter per page in its own heap (moved with it) and
# checks each page against its current generation, so a page the move lost
# or took stale is caught. The dirtying memhog also keeps the largest gap
# between two of its ~5 ms wake-ups over the moves (SIGUSR1), which is the
# freeze as the process itself saw it ("seen gap" below).
#
# Reference, per size, measured in the same run before the memhog starts:
#   TCP       that many random bytes over one raw 127.0.0.1 TCP connection
#             between two processes (build/bin/tcp_pipe_ref pipe FILE, the
#             file in /dev/shm; its own figure, accept to EOF; best of 3)
#   populate  that many bytes copied into freshly mmapped memory populated in
#             one call (build/bin/memcpy_ref, populated_ns: what a restorer
#             that pre-faults its mappings pays; fresh_ns, faulting page by
#             page, goes to the RESULT lines)
#   ref = TCP + populate; ratio = median total / ref.
#
# Goals (reported, never asserted; shared, noisy 2-core machines):
#   total <= 2x ref at 16 KiB, 64 MiB and 1 GiB (idle processes);
#   frozen < 20 ms for 16 KiB and 64 MiB (in the root or its child); < 100 ms for 1 GiB dirtying 16 MiB/s;
#   16 KiB moved end to end (median `roam migrate` wall time) in < 30 ms.
# Output: a Markdown table, the goals (met / NOT met), then one RESULT line
# per case. Progress and problems go to stderr. About 1 minute here.
#
# Usage: bench/migrate_bench.sh [--name CLUSTER] [CASE...]
#        CASE: 16K 16K-tty 64M 64M-home 64M-tree 64M-8T 1G 1G-dirty, or SIZE-dirty-RATE (a memhog of
#        SIZE rewriting RATE bytes a second, e.g. 256M-dirty-1G; moved
#        n2 -> n3 -> n2). Default: all six and the pre-copy sweep
#        256M-dirty-64M 256M-dirty-256M 256M-dirty-1G, which shows the rate
#        at which pre-copy stops converging (its rounds stop shrinking and
#        the frozen copy carries what the process rewrote meanwhile).
#        ROAM_BIN overrides build/bin.
# Needs root, jq. Exit status: 0 if every move succeeded and every verify
# was ok (whether or not a goal is met), 1 if something broke.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
. bench/lib/common.sh
bench_bin migrate_bench.sh
CLUSTER=mbench
DIRTY_RATE=16M

CASES=()
usage() { echo "usage: bench/migrate_bench.sh [--name CLUSTER] [16K|16K-tty|64M|64M-home|64M-tree|64M-8T|1G|1G-dirty|SIZE-dirty-RATE...]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --name) CLUSTER=${2:-}; [ -n "$CLUSTER" ] || usage; shift 2 ;;
    16K|16K-tty|64M|64M-home|64M-tree|64M-8T|1G|1G-dirty|[0-9]*[KMG]-dirty-[0-9]*[KMG]) CASES+=("$1"); shift ;;
    *) usage ;;
  esac
done
[ ${#CASES[@]} -gt 0 ] || CASES=(16K 16K-tty 64M 64M-home 64M-tree 64M-8T 1G 1G-dirty 256M-dirty-64M 256M-dirty-256M 256M-dirty-1G)

missing=()
for b in roam roamd ckpt_memhog memcpy_ref tcp_pipe_ref; do [ -x "$BIN/$b" ] || missing+=("$BIN/$b"); done
for c in jq timeout awk; do command -v "$c" >/dev/null || missing+=("$c"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "migrate_bench.sh: missing ${missing[*]} (build with make bench; packages: scripts/install-deps.sh)" >&2
  exit 1
fi
[ "$(id -u)" -eq 0 ] || { echo "migrate_bench.sh: needs root (roam cluster)" >&2; exit 1; }

close_extra_fds

WORK=$(mktemp -d /var/tmp/roam-migrate-bench.XXXXXX)  # the cluster's shared directory
chmod 755 "$WORK"
REFFILE=""      # the TCP reference's file in /dev/shm
BG_PIDS=()      # host-side `roam cluster exec` processes running a memhog's `roam run`
CLUSTER_UP=0
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  local p
  # Taking the cluster down ends whatever still runs in the nodes.
  [ "$CLUSTER_UP" -eq 1 ] && "$ROAM" cluster down --name "$CLUSTER" >/dev/null 2>&1
  for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  [ -n "$REFFILE" ] && rm -f "$REFFILE"
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

FAILED=0
note() { echo "migrate_bench: $*" >&2; }
failed() { note "$*"; FAILED=1; }

# ---- helpers ---------------------------------------------------------------

cx() { "$ROAM" cluster exec --name "$CLUSTER" "$@"; }  # cx NODE -- CMD...
# field KEY TEXT: the value of KEY=VALUE in TEXT.
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2" | head -1; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
now_ms() { local t=${EPOCHREALTIME//[.,]/}; echo $((10#$t / 1000)); }

fmt_ms() {  # 1234.5 (ms) -> "1.23 s"; "" -> "-"
  awk -v n="$1" 'BEGIN {
    if (n == "") { print "-"; exit }
    if (n < 1) printf "%.0f us", n * 1e3; else if (n < 100) printf "%.1f ms", n;
    else if (n < 1e4) printf "%.0f ms", n; else printf "%.1f s", n / 1e3 }'
}
fmt_bytes() {
  awk -v n="$1" 'BEGIN {
    if (n == "") { print "-"; exit }
    if (n < 1024) printf "%d B", n; else if (n < 1048576) printf "%.1f KiB", n / 1024;
    else if (n < 1073741824) printf "%.1f MiB", n / 1048576; else printf "%.2f GiB", n / 1073741824 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print ""; else if (a / b >= 100) printf "%.0f", a / b; else printf "%.2f", a / b }'; }
fmt_ratio() { [ -n "$1" ] && echo "${1}x" || echo "-"; }
# goal VALUE OP BOUND: "met", "NOT met", or "not measured".
goal() {
  [ -n "$1" ] || { echo "not measured"; return; }
  awk -v v="$1" -v op="$2" -v b="$3" 'BEGIN {
    ok = (op == ">=") ? v >= b : (op == "<=") ? v <= b : (op == ">") ? v > b : v < b
    print ok ? "met" : "NOT met" }'
}
median() {  # median NUMBERS...: "" if none
  printf '%s\n' "$@" | awk 'NF' | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) exit; if (NR % 2) m = v[(NR + 1) / 2]; else m = (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%.15g\n", m }'
}
to_bytes() { awk -v s="$1" 'BEGIN { n = s + 0; u = substr(s, length(s)); m = (u == "K") ? 1024 : (u == "M") ? 1048576 : (u == "G") ? 1073741824 : 1; printf "%d\n", n * m }'; }
size_of() { case $1 in 16K|16K-tty) echo 16K ;; 64M|64M-home|64M-tree|64M-8T) echo 64M ;; 1G|1G-dirty) echo 1G ;; *-dirty-*) echo "${1%%-*}" ;; esac; }
bytes_of() { to_bytes "$(size_of "$1")"; }
rate_of() { case $1 in 1G-dirty) echo "$DIRTY_RATE" ;; *-dirty-*) echo "${1##*-}" ;; esac; }  # "" when it does not rewrite
sweep_case() { [[ $1 == *-dirty-* ]]; }
label_of() {
  case $1 in
    16K) echo "16 KiB" ;; 64M) echo "64 MiB" ;; 1G) echo "1 GiB" ;;
    64M-home) echo "64 MiB, to its home and back (n2 -> home -> n2 -> home)" ;;
    64M-tree) echo "64 MiB in the root's child (a tree of 2)" ;;
    64M-8T) echo "64 MiB, 8 threads (n2 -> n3 -> home -> n2)" ;;
    16K-tty) echo "16 KiB with a terminal (roam run -t: n2 -> n3 -> home -> n2)" ;;
    1G-dirty) echo "1 GiB, rewriting $DIRTY_RATE/s" ;;
    *-dirty-*) echo "$(size_of "$1"), rewriting $(rate_of "$1")/s" ;;
  esac
}
route_of() { case $1 in 1G|1G-dirty|*-dirty-*) echo "n3 n2" ;; 64M-home) echo "home n2 home" ;; 16K-tty|64M-8T) echo "n3 home n2" ;; *) echo "n3 n2 n3" ;; esac; }

# Run inside n1 (WORK is at the same path in every node and on the host).
cat >"$WORK/start.sh" <<'EOF'
# start.sh DIR NAME CMD...: runs CMD (stdin /dev/null) with stdout/stderr in
# DIR/NAME.out/.err; its PID in DIR/NAME.pid, then its exit status in DIR/NAME.rc.
d=$1 n=$2
shift 2
"$@" </dev/null >"$d/$n.out" 2>"$d/$n.err" &
p=$!
echo $p >"$d/$n.pid.tmp" && mv "$d/$n.pid.tmp" "$d/$n.pid"
wait $p
echo $? >"$d/$n.rc.tmp" && mv "$d/$n.rc.tmp" "$d/$n.rc"
EOF
cat >"$WORK/migrate.sh" <<'EOF'
# migrate.sh ROAM GPID NODE OUT: `ROAM migrate GPID NODE --json` into OUT.json
# (stderr OUT.err), then "exit_status wall_microseconds" into OUT.t.
s=$EPOCHREALTIME
"$1" migrate "$2" "$3" --json </dev/null >"$4.json" 2>"$4.err"
rc=$?
e=$EPOCHREALTIME
echo "$rc $(( 10#${e/[.,]/} - 10#${s/[.,]/} ))" >"$4.t"
EOF

# wait_file SECONDS FILE [PATTERN]: true once FILE exists (and holds PATTERN).
wait_file() {
  local i
  for ((i = 0; i < $1 * 20; i++)); do
    if [ -z "${3:-}" ]; then [ -s "$2" ] && return 0; else grep -q "$3" "$2" 2>/dev/null && return 0; fi
    sleep 0.05
  done
  return 1
}

# ask_hog GPID SIGNAL REPORT KEY: `roam kill -s SIGNAL GPID` from n1, waits
# up to 120 s for REPORT to hold KEY=, prints the report.
ask_hog() {
  rm -f "$3"
  timeout -k 5 30 "$ROAM" cluster exec --name "$CLUSTER" n1 -- "$ROAM" kill -s "$2" "$1" </dev/null >/dev/null 2>>"$WORK/kill.err" || return 1
  wait_file 120 "$3" "$4=" || return 1
  cat "$3"
}

# has_pid NODE PID: a process with PID exists in NODE.
has_pid() { [ -n "$(cx "$1" -- ps -p "$2" -o pid= </dev/null 2>/dev/null)" ]; }

# ---- cluster -------------------------------------------------------------------

note "$(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)," \
     "$(nproc) CPUs, kernel $(uname -r), load average at start $(loadavg)"
"$ROAM" cluster down --name "$CLUSTER" >/dev/null 2>&1  # a leftover of an earlier run
CLUSTER_UP=1  # from here on, the exit takes down whatever came up
if ! "$ROAM" cluster up --name "$CLUSTER" --nodes 3 --shared "$WORK" >"$WORK/up.log" 2>&1; then
  note "roam cluster up failed: $(tail -c 300 "$WORK/up.log" | tr '\n' ' ')"
  exit 1
fi
mesh=0
for ((i = 0; i < 150; i++)); do
  ok=1
  for n in n1 n2 n3; do
    [ "$(cx "$n" -- "$ROAM" nodes --json </dev/null 2>/dev/null | jq '[.nodes[] | select(.state == "alive")] | length' 2>/dev/null)" = 3 ] || { ok=0; break; }
  done
  [ $ok -eq 1 ] && { mesh=1; break; }
  sleep 0.2
done
[ $mesh -eq 1 ] || { note "the 3 nodes did not all see each other alive within 30 s"; exit 1; }

# ---- reference -----------------------------------------------------------------

# reference CASE: sets REF_TCP_NS, REF_POP_NS, REF_FRESH_NS (ns) and REF_MS
# for the case's size (left empty on failure).
declare -A REF_DONE
reference() {
  local size; size=$(size_of "$1")
  local bytes; bytes=$(bytes_of "$1")
  if [ -n "${REF_DONE[$size]:-}" ]; then
    read -r REF_TCP_NS REF_POP_NS REF_FRESH_NS REF_MS <<<"${REF_DONE[$size]}"; return
  fi
  REF_TCP_NS="" REF_POP_NS="" REF_FRESH_NS="" REF_MS=""
  local mc; mc=$("$BIN/memcpy_ref" "$size" 2>"$WORK/memcpy.err") || { failed "memcpy_ref $size failed: $(head -c 200 "$WORK/memcpy.err")"; return; }
  REF_POP_NS=$(field populated_ns "$mc"); REF_FRESH_NS=$(field fresh_ns "$mc")
  REFFILE=$(mktemp /dev/shm/roam-migrate-bench.XXXXXX)
  if head -c "$bytes" /dev/urandom >"$REFFILE"; then
    local r ns best=""
    for r in 1 2 3; do
      if "$BIN/tcp_pipe_ref" pipe "$REFFILE" >/dev/null 2>"$WORK/tcp.err"; then
        ns=$(field ns "$(cat "$WORK/tcp.err")")
        if [ -n "$ns" ] && { [ -z "$best" ] || [ "$ns" -lt "$best" ]; }; then best=$ns; fi
      else
        failed "tcp_pipe_ref $size failed: $(head -c 200 "$WORK/tcp.err")"
      fi
    done
    REF_TCP_NS=$best
  else
    failed "could not write $bytes bytes to $REFFILE"
  fi
  rm -f "$REFFILE"; REFFILE=""
  if [ -n "$REF_TCP_NS" ] && [ -n "$REF_POP_NS" ]; then
    REF_MS=$(awk -v a="$REF_TCP_NS" -v b="$REF_POP_NS" 'BEGIN { printf "%.4f", (a + b) / 1e6 }')
    REF_DONE[$size]="$REF_TCP_NS $REF_POP_NS $REF_FRESH_NS $REF_MS"
  fi
}

# ---- one case --------------------------------------------------------------------

ROWS=()
RESULTS=()
SWEEP=()
declare -A TOTAL FROZEN WALL RATIO

run_case() {
  local c=$1
  local label; label=$(label_of "$c")
  local size; size=$(size_of "$c")
  note "$label: reference ($(loadavg))"
  reference "$c"
  local ref_ms=$REF_MS

  # The memhog, from n1 on n2.
  local name=hog.$c report=$WORK/hog.$c.report
  local extra=(); [ -n "$(rate_of "$c")" ] && extra=(--dirty-rate "$(rate_of "$c")")
  [ "$c" = 64M-tree ] && extra+=(--in-child)
  [ "$c" = 64M-8T ] && extra+=(--threads 8)
  local run_opts=(); [ "$c" = 16K-tty ] && run_opts=(-t)
  note "$label: starting the memhog on n2"
  timeout -k 5 600 "$ROAM" cluster exec --name "$CLUSTER" n1 -- bash "$WORK/start.sh" "$WORK" "$name" \
    "$ROAM" run "${run_opts[@]}" --on n2 -- "$BIN/ckpt_memhog" "$size" "${extra[@]}" --report "$report" \
    </dev/null >"$WORK/$name.sh.log" 2>&1 &
  BG_PIDS+=($!)
  if ! wait_file 10 "$WORK/$name.pid" || ! wait_file 120 "$WORK/$name.out" READY; then
    failed "$label: the memhog did not get ready: $(head -c 300 "$WORK/$name.err" 2>/dev/null | tr '\n' ' ') $(tail -c 200 "$WORK/$name.sh.log" | tr '\n' ' ')"
    ROWS+=("| $label | memhog did not start | | | | | | | | | |")
    return
  fi
  local pid; pid=$(cat "$WORK/$name.pid")
  local gpid=n1:$pid
  local ready; ready=$(grep READY "$WORK/$name.out")
  [ "$(field pid "$ready")" = "$pid" ] || note "$label: READY says pid $(field pid "$ready"), roam run has pid $pid in n1"

  # The dirtying memhog: open its gap window right before the moves.
  local seen_gap_ms=""
  if [ -n "$(rate_of "$c")" ]; then
    sleep 1  # let it rewrite for a while first
    ask_hog "$gpid" USR1 "$report" max_gap_ns >/dev/null || failed "$label: no answer to SIGUSR1"
  fi

  # The moves.
  local to k=0 moved=0 where=n2 t0 waited
  local totals=() frozens=() walls=() sents=() dumps=() restores=() rounds=() waits=()
  for to in $(route_of "$c"); do
    k=$((k + 1))
    # The previous move's old copy may still be exiting on this target.
    t0=$(now_ms) waited=0
    # (At home the PID is the deputy's: it becomes the process.)
    while [ "$to" != home ] && has_pid "$to" "$pid"; do
      if [ $(( $(now_ms) - t0 )) -gt 30000 ]; then failed "$label: pid $pid still present on $to 30 s after the previous move"; break; fi
      sleep 0.02
      waited=$(( $(now_ms) - t0 ))
    done
    waits+=("$waited")
    [ "$waited" -gt 0 ] && note "$label: move $k: waited $waited ms for pid $pid (the old copy) to go from $to"
    local out=$WORK/mig.$c.$k
    note "$label: move $k, $where -> $to"
    timeout -k 5 300 "$ROAM" cluster exec --name "$CLUSTER" n1 -- bash "$WORK/migrate.sh" "$ROAM" "$gpid" "$to" "$out" \
      </dev/null >"$out.log" 2>&1
    local rc wall_us j
    read -r rc wall_us <"$out.t" 2>/dev/null || rc=none
    if [ "$rc" != 0 ] || ! j=$(jq -c . "$out.json" 2>/dev/null) || [ -z "$j" ]; then
      failed "$label: move $k ($where -> $to) failed (exit $rc): $(head -c 300 "$out.err" 2>/dev/null | tr '\n' ' ') $(tail -c 200 "$out.log" | tr '\n' ' ')"
      break
    fi
    moved=$((moved + 1)); where=$to
    totals+=("$(jq -r .total_ms <<<"$j")"); frozens+=("$(jq -r .frozen_ms <<<"$j")")
    sents+=("$(jq -r .bytes_sent <<<"$j")"); dumps+=("$(jq -r .dump_ms <<<"$j")")
    restores+=("$(jq -r .restore_ms <<<"$j")"); rounds+=("$(jq -r .rounds <<<"$j")")
    walls+=("$(awk -v u="$wall_us" 'BEGIN { printf "%.3f", u / 1e3 }')")
  done

  if [ -n "$(rate_of "$c")" ]; then
    local g; g=$(ask_hog "$gpid" USR1 "$report" max_gap_ns) && seen_gap_ms=$(awk -v n="$(field max_gap_ns "$g")" 'BEGIN { printf "%.3f", n / 1e6 }')
    [ -n "$seen_gap_ms" ] || failed "$label: no answer to SIGUSR1 after the moves"
  fi

  # Verify, then kill.
  local v verify="no answer" vline=""
  if v=$(ask_hog "$gpid" USR2 "$report" verify); then
    vline=$(head -1 <<<"$v"); verify=$(field verify "$vline")
  fi
  [ "$verify" = ok ] || failed "$label: verify after $moved moves: ${vline:-no answer}"
  timeout -k 5 30 "$ROAM" cluster exec --name "$CLUSTER" n1 -- "$ROAM" kill -s KILL "$gpid" </dev/null >/dev/null 2>>"$WORK/kill.err" \
    || failed "$label: roam kill -s KILL $gpid failed: $(tail -c 200 "$WORK/kill.err" | tr '\n' ' ')"
  if wait_file 30 "$WORK/$name.rc"; then
    local hrc; hrc=$(cat "$WORK/$name.rc")
    [ "$hrc" = 137 ] || failed "$label: roam run ended with $hrc after SIGKILL, not 137: $(head -c 200 "$WORK/$name.err" | tr '\n' ' ')"
  else
    failed "$label: roam run did not end within 30 s of SIGKILL"
  fi

  local n_moves; n_moves=$(wc -w <<<"$(route_of "$c")")
  local m_total m_frozen m_wall m_sent m_dump m_restore
  m_total=$(median "${totals[@]}"); m_frozen=$(median "${frozens[@]}"); m_wall=$(median "${walls[@]}")
  m_sent=$(median "${sents[@]}"); m_dump=$(median "${dumps[@]}"); m_restore=$(median "${restores[@]}")
  local r; r=$(ratio "$m_total" "$ref_ms")
  TOTAL[$c]=$m_total FROZEN[$c]=$m_frozen WALL[$c]=$m_wall RATIO[$c]=$r
  if sweep_case "$c"; then
    local IFS=' '
    SWEEP+=("| $(rate_of "$c")/s | ${rounds[*]:--} | $(fmt_ms "$m_frozen") | $(fmt_ms "$seen_gap_ms") | $(fmt_bytes "$m_sent") | $(fmt_ms "$m_total") | $verify |")
    unset IFS
  fi
  local tcp_ms pop_ms
  tcp_ms=$(awk -v n="$REF_TCP_NS" 'BEGIN { if (n != "") printf "%.4f", n / 1e6 }')
  pop_ms=$(awk -v n="$REF_POP_NS" 'BEGIN { if (n != "") printf "%.4f", n / 1e6 }')
  local vcell=$verify
  [ -n "$(rate_of "$c")" ] && [ -n "$vline" ] && vcell="$verify ($(field rewritten_pages "$vline") pages rewritten)"
  ROWS+=("| $label | $moved/$n_moves | $(fmt_ms "$m_total") | $(fmt_ms "$m_frozen") | $(fmt_ms "$m_wall") | $(fmt_ms "$m_dump") / $(fmt_ms "$m_restore") | $(fmt_bytes "$m_sent") | $(fmt_ms "$tcp_ms") + $(fmt_ms "$pop_ms") = $(fmt_ms "$ref_ms") | $(fmt_ratio "$r") | $(fmt_ms "$seen_gap_ms") | $vcell |")
  local IFS=,
  RESULTS+=("RESULT migrate case=$c bytes=$(bytes_of "$c") moves=$moved/$n_moves total_ms=${m_total:--} frozen_ms=${m_frozen:--} wall_ms=${m_wall:--} bytes_sent=${m_sent:--} dump_ms=${m_dump:--} restore_ms=${m_restore:--} rounds=${rounds[*]:--} totals_ms=${totals[*]:--} frozens_ms=${frozens[*]:--} walls_ms=${walls[*]:--} old_copy_waits_ms=${waits[*]:--} ref_tcp_ns=${REF_TCP_NS:--} ref_populated_ns=${REF_POP_NS:--} ref_fresh_ns=${REF_FRESH_NS:--} ref_ms=${ref_ms:--} total_over_ref=${r:--} seen_gap_ms=${seen_gap_ms:--} verify=${verify// /_}")
}

# ---- main --------------------------------------------------------------------

avail_kib=$(awk '/MemAvailable/ {print $2}' /proc/meminfo)
for c in "${CASES[@]}"; do
  # 1 GiB needs the memhog, memcpy_ref's buffers and the reference file.
  if [[ $c == 1G* ]] && [ "$avail_kib" -lt $((5 * 1048576)) ]; then
    note "skipping $c: under 5 GiB available"; continue
  fi
  run_case "$c"
done

echo "Live migration (roam migrate), 3-node roam cluster, memhog started from n1 on n2; $(nproc) CPUs," \
     "kernel $(uname -r); load average at end $(loadavg)"
echo
echo "| case | moves ok | total (median) | frozen (median) | roam migrate wall (median) | dump / restore (median) | bytes sent (median) | reference: TCP + populate | total/reference | seen gap | verify |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo
echo "Goals:"
for c in 16K 64M 1G; do
  [[ " ${CASES[*]} " == *" $c "* ]] || continue
  echo "- $(label_of "$c"): total/reference $(fmt_ratio "${RATIO[$c]:-}") (goal <= 2x: $(goal "${RATIO[$c]:-}" "<=" 2))"
done
for c in 16K 64M 64M-tree; do
  [[ " ${CASES[*]} " == *" $c "* ]] || continue
  echo "- $(label_of "$c"): frozen $(fmt_ms "${FROZEN[$c]:-}") (goal < 20 ms: $(goal "${FROZEN[$c]:-}" "<" 20))"
done
if [[ " ${CASES[*]} " == *" 1G-dirty "* ]]; then
  echo "- $(label_of 1G-dirty): frozen $(fmt_ms "${FROZEN[1G-dirty]:-}") (goal < 100 ms: $(goal "${FROZEN[1G-dirty]:-}" "<" 100))"
fi
if [[ " ${CASES[*]} " == *" 16K "* ]]; then
  echo "- 16 KiB moved end to end: roam migrate wall $(fmt_ms "${WALL[16K]:-}"), total $(fmt_ms "${TOTAL[16K]:-}") (goal < 30 ms: $(goal "${WALL[16K]:-}" "<" 30))"
fi
if [ ${#SWEEP[@]} -gt 0 ]; then
  echo
  echo "Pre-copy convergence (a memhog rewriting its pages at a given rate, 2 moves; pre-copy stops after"
  echo "8 rounds, or when a round would be <= 2 MiB, or is not 25% smaller than the last):"
  echo
  echo "| rewrite rate | rounds (per move) | frozen (median) | seen gap | bytes sent (median) | total (median) | verify |"
  echo "|---|---|---|---|---|---|---|"
  printf '%s\n' "${SWEEP[@]}"
fi
echo
printf '%s\n' "${RESULTS[@]}"
exit "$FAILED"
