#!/usr/bin/env bash
# Checkpoint/restore engine: dump, restore and freeze time and image size for
# processes of growing memory, each against memcpy of the same bytes measured
# in the same run (build/bin/memcpy_ref). Sizes: the seed study's 16 KiB and
# 64 MiB, then 1 GiB touched, and 4 GiB mapped with 1% of its pages touched;
# every touched page holds random content, so zero-page elision or
# compression cannot cheat. The process is build/bin/ckpt_memhog.
#
# Per case and per image location (default /var/tmp, on disk, and /dev/shm,
# tmpfs), with a fresh memhog each time:
#   dump     wall time of `roam checkpoint PID -D DIR` (which kills the tree)
#   restore  wall time of `roam restore -D DIR --detach` (returns once running)
#   image    `du -sb DIR`; image/mapped against the memhog's mapping
#   intact   the restored memhog re-checks every touched page (SIGUSR2)
#   freeze   a memhog --spin is dumped with --leave-running; the largest gap
#            between two of its clock_gettime calls during the dump is the
#            freeze as the process saw it (the same gap over 1 s without a
#            dump is printed as the noise floor)
# Ratios are against memcpy between two touched buffers ("touched"); the
# figure into freshly mmapped memory ("fresh", page faults included) is
# printed too: on these VMs a page fault costs ~15 us, and any restorer
# pays for faulting in the new address space.
#
# Case 256M-100P: 256 MiB written by a process that then forks 99 children
# sharing it copy-on-write (ckpt_memhog --sharers 100): the image should
# hold the shared pages once (image/mapped near 100%, not 10,000%), and the
# restore share them again.
#
# Goals: dump and restore of 1 GiB each within 3x memcpy; the 4 GiB sparse
# image under 2% of 4 GiB; freeze of 64 MiB under 50 ms. Reported, never
# asserted. Output: a Markdown table for docs/BENCHMARKS.md, then the goals,
# then one RESULT line per case and location.
#
# Usage: bench/ckpt_bench.sh [--dirs "DIR..."] [CASE...]
#        CASE: 16K 64M 1G 4G-sparse, and 16K-8T 64M-8T 1G-8T (the same
#        memory, the process with 8 threads), and 256M-100P (default:
#        all); ROAM_BIN
#        overrides build/bin.
# Exit status: 0 if every dump and restore succeeded and memory was intact.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
BIN=${ROAM_BIN:-${BUILD:-build}/bin}
ROAM=$BIN/roam

DIRS="/var/tmp /dev/shm"
CASES=()
while [ $# -gt 0 ]; do
  case $1 in
    --dirs) DIRS=$2; shift 2 ;;
    16K|64M|1G|4G-sparse|16K-8T|64M-8T|1G-8T|256M-100P) CASES+=("$1"); shift ;;
    *) echo "usage: bench/ckpt_bench.sh [--dirs \"DIR...\"] [16K|64M|1G|4G-sparse|16K-8T|64M-8T|1G-8T|256M-100P...]" >&2; exit 2 ;;
  esac
done
[ ${#CASES[@]} -gt 0 ] || CASES=(16K 64M 1G 4G-sparse 16K-8T 64M-8T 1G-8T 256M-100P)

for b in roam ckpt_memhog memcpy_ref; do
  if [ ! -x "$BIN/$b" ]; then
    echo "ckpt_bench.sh: $BIN/$b not found; build first (make bench)" >&2
    exit 1
  fi
done

# Only fds 0-2 may reach the memhogs: whatever this script inherited beyond
# them (a harness's pipe, say) would be part of every dumped tree, and
# `roam checkpoint` refuses a pipe to outside. Bash reads this script
# through fd 255 (close-on-exec already).
for fd_path in /proc/$$/fd/*; do
  fd=${fd_path##*/}
  if [ "$fd" -gt 2 ] && [ "$fd" -ne 255 ]; then eval "exec $fd>&-" 2>/dev/null; fi
done

WORK=$(mktemp -d /var/tmp/roam-ckpt-bench.XXXXXX)
IMAGES=()   # image directories to remove on exit
HOGS=()     # PIDs of memhogs we started (a restored one keeps its PID)
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  local p
  for p in "${HOGS[@]}"; do
    # Only ever a memhog: the PID may have been reused since.
    if grep -qs ckpt_memhog "/proc/$p/cmdline"; then kill -9 "$p" 2>/dev/null; fi
  done
  rm -rf "$WORK" "${IMAGES[@]}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

FAILED=0
note() { echo "ckpt_bench: $*" >&2; }

# ---- helpers ---------------------------------------------------------------

now_ns() { local t=${EPOCHREALTIME//[.,]/}; echo "${t}000"; }

# field KEY TEXT: the value of KEY=VALUE in TEXT.
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2" | head -1; }

fmt_ns() {  # 1234567 -> "1.23 ms"
  awk -v n="$1" 'BEGIN {
    if (n == "") { print "-"; exit }
    if (n < 1e3) printf "%d ns", n; else if (n < 1e6) printf "%.1f us", n / 1e3;
    else if (n < 1e9) printf "%.1f ms", n / 1e6; else printf "%.2f s", n / 1e9 }'
}
fmt_bytes() {
  awk -v n="$1" 'BEGIN {
    if (n == "") { print "-"; exit }
    if (n < 1024) printf "%d B", n; else if (n < 1048576) printf "%.1f KiB", n / 1024;
    else if (n < 1073741824) printf "%.1f MiB", n / 1048576; else printf "%.2f GiB", n / 1073741824 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "-"; else if (a / b >= 100) printf "%.0fx", a / b; else printf "%.2fx", a / b }'; }
percent() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "-"; else if (a / b >= 10) printf "%.0fx", a / b; else printf "%.2f%%", 100 * a / b }'; }

# wait_gone PID SECONDS: true once /proc/PID is gone (an orphan's zombie can
# hold the PID for ~1 s until PID 1 reaps it).
wait_gone() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    [ -e "/proc/$1" ] || return 0
    sleep 0.1
  done
  return 1
}

# start_hog OUT ARGS...: starts a memhog (stdin /dev/null, stdout OUT), waits
# for READY; sets HOG_PID and HOG_READY (its READY line). False on failure.
start_hog() {
  local out=$1; shift
  "$BIN/ckpt_memhog" "$@" </dev/null >"$out" 2>"$out.err" &
  HOG_PID=$!
  disown "$HOG_PID"  # bash still reaps it, without a "Killed" line
  HOGS+=("$HOG_PID")
  local i
  for ((i = 0; i < 1200; i++)); do
    if grep -q READY "$out" 2>/dev/null; then
      HOG_READY=$(grep READY "$out")
      return 0
    fi
    kill -0 "$HOG_PID" 2>/dev/null || break
    sleep 0.1
  done
  note "memhog $* did not get ready: $(cat "$out.err" 2>/dev/null)"
  stop_hog "$HOG_PID"
  return 1
}

# ask_hog PID SIGNAL REPORT KEY: sends SIGNAL, waits up to 120 s for REPORT to
# hold KEY=, prints the report line.
ask_hog() {
  rm -f "$3"
  kill -"$2" "$1" 2>/dev/null || return 1
  local i
  for ((i = 0; i < 1200; i++)); do
    if grep -q "$4=" "$3" 2>/dev/null; then cat "$3"; return 0; fi
    sleep 0.1
  done
  return 1
}

stop_hog() {  # stop_hog PID: kill it (our child or not) and wait until gone
  kill -9 "$1" 2>/dev/null
  wait_gone "$1" 10 || note "pid $1 still present after kill"
}

case_args() {
  case $1 in
    16K) echo 16K ;;
    64M) echo 64M ;;
    1G) echo 1G ;;
    4G-sparse) echo 4G --touch-percent 1 ;;
    *-8T) echo "${1%-8T}" --threads 8 ;;
    256M-100P) echo 256M --sharers 100 ;;
  esac
}
case_label() {
  case $1 in
    16K) echo "16 KiB" ;;
    64M) echo "64 MiB" ;;
    1G) echo "1 GiB" ;;
    4G-sparse) echo "4 GiB mapped, 1% touched" ;;
    *-8T) echo "$(case_label "${1%-8T}"), 8 threads" ;;
    256M-100P) echo "256 MiB shared by 100 processes" ;;
  esac
}

# tree_pids PID: PID and its descendants.
tree_pids() {
  local pids=("$1") i=0 kid
  while [ $i -lt ${#pids[@]} ]; do
    for kid in $(cat /proc/"${pids[$i]}"/task/*/children 2>/dev/null); do pids+=("$kid"); done
    i=$((i + 1))
  done
  echo "${pids[@]}"
}

# ---- one case in one location -------------------------------------------------

declare -A MEMCPY  # touched bytes -> memcpy_ref output
ROWS=()
RESULTS=()
declare -A GOAL    # "case dir metric" -> value

run_case() {
  local c=$1 dir=$2
  local label; label="$(case_label "$c"), $dir"
  local img="$dir/roam-ckpt-bench.$$.$c"
  IMAGES+=("$img" "$img.freeze")
  rm -rf "$img" "$img.freeze"
  local report="$WORK/report.$c"
  # shellcheck disable=SC2046
  if ! start_hog "$WORK/hog.$c.out" $(case_args "$c") --report "$report"; then
    ROWS+=("| $label | - | - | memhog failed | | | | | | | |"); FAILED=1; return
  fi
  local pid=$HOG_PID
  local mapped touched
  mapped=$(field mapped_bytes "$HOG_READY")
  touched=$(field touched_bytes "$HOG_READY")
  if [ -z "${MEMCPY[$touched]:-}" ]; then
    MEMCPY[$touched]=$("$BIN/memcpy_ref" "$touched")
  fi
  local mc=${MEMCPY[$touched]}
  local mc_t mc_f mc_p mc_v
  mc_t=$(field touched_ns "$mc"); mc_f=$(field fresh_ns "$mc"); mc_p=$(field populated_ns "$mc")
  mc_v=$(field vmread_ns "$mc")

  # dump (kills the memhog)
  local t0 dump_ns="" restore_ns="" image="" intact="-" status="ok"
  local tree p; tree=$(tree_pids "$pid")
  t0=$(now_ns)
  if "$ROAM" checkpoint "$pid" -D "$img" </dev/null >"$WORK/dump.log" 2>&1; then
    dump_ns=$(( $(now_ns) - t0 ))
    stop_hog "$pid"  # reaps it; the engine already killed it
    # Its children are PID 1's to reap (up to ~1 s here): their PIDs first.
    for p in $tree; do wait_gone "$p" 10 || note "pid $p still present after the dump"; done
    image=$(du -sb "$img" | awk '{print $1}')
    t0=$(now_ns)
    if "$ROAM" restore -D "$img" --detach </dev/null >"$WORK/restore.log" 2>&1; then
      restore_ns=$(( $(now_ns) - t0 ))
      local v; v=$(ask_hog "$pid" USR2 "$report" verify)
      intact=$(field verify "$v"); intact=${intact:-"no answer"}
      [ "$intact" = ok ] || { status="memory not intact"; FAILED=1; }
    else
      status="restore failed: $(head -c 200 "$WORK/restore.log" | tr '\n' ' ')"; FAILED=1
    fi
    stop_hog "$pid"
  else
    status="dump failed: $(head -c 200 "$WORK/dump.log" | tr '\n' ' ')"; FAILED=1
    stop_hog "$pid"
  fi
  rm -rf "$img"

  # freeze, on a spinning memhog left running
  local freeze_ns="" floor_ns=""
  # shellcheck disable=SC2046
  if start_hog "$WORK/spin.$c.out" $(case_args "$c") --spin --report "$report"; then
    local spid=$HOG_PID r
    ask_hog "$spid" USR1 "$report" max_gap_ns >/dev/null  # opens the window
    sleep 1
    r=$(ask_hog "$spid" USR1 "$report" max_gap_ns) && floor_ns=$(field max_gap_ns "$r")
    if "$ROAM" checkpoint "$spid" -D "$img.freeze" --leave-running </dev/null >"$WORK/freeze.log" 2>&1; then
      r=$(ask_hog "$spid" USR1 "$report" max_gap_ns) && freeze_ns=$(field max_gap_ns "$r")
      [ -n "$freeze_ns" ] || { status="$status; not running after --leave-running"; FAILED=1; }
    else
      status="$status; --leave-running dump failed: $(head -c 200 "$WORK/freeze.log" | tr '\n' ' ')"; FAILED=1
    fi
    stop_hog "$spid"
  fi
  rm -rf "$img.freeze"

  [ "$status" = ok ] || note "$label: $status"
  ROWS+=("| $label | $(fmt_bytes "$touched") | $(fmt_ns "$mc_t") / $(fmt_ns "$mc_f") | $(fmt_ns "$dump_ns") | $(ratio "$dump_ns" "$mc_t") / $(ratio "$dump_ns" "$mc_f") | $(fmt_ns "$restore_ns") | $(ratio "$restore_ns" "$mc_t") / $(ratio "$restore_ns" "$mc_f") | $(fmt_bytes "$image") | $(percent "$image" "$mapped") | $(fmt_ns "$freeze_ns") | $intact |")
  RESULTS+=("RESULT ckpt case=$c dir=$dir mapped_bytes=$mapped touched_bytes=$touched memcpy_touched_ns=$mc_t memcpy_fresh_ns=$mc_f memcpy_populated_ns=$mc_p vmread_ns=$mc_v dump_ns=${dump_ns:--} restore_ns=${restore_ns:--} image_bytes=${image:--} freeze_ns=${freeze_ns:--} freeze_floor_ns=${floor_ns:--} intact=${intact// /_}")
  GOAL["$c $dir dump"]=$(ratio "$dump_ns" "$mc_t")
  GOAL["$c $dir restore"]=$(ratio "$restore_ns" "$mc_t")
  GOAL["$c $dir restore_fresh"]=$(ratio "$restore_ns" "$mc_f")
  GOAL["$c $dir restore_pop"]=$(ratio "$restore_ns" "$mc_p")
  GOAL["$c $dir pop"]="$(fmt_ns "$mc_p") ($(ratio "$mc_p" "$mc_t") of touched)"
  GOAL["$c $dir dump_vmread"]=$(ratio "$dump_ns" "$mc_v")
  GOAL["$c $dir vmread"]=$(fmt_ns "$mc_v")
  GOAL["$c $dir image"]=$(percent "$image" "$mapped")
  GOAL["$c $dir freeze"]=$(fmt_ns "$freeze_ns")
  GOAL["$c $dir freeze_ns"]=$freeze_ns
  GOAL["$c $dir floor"]=$(fmt_ns "$floor_ns")
}

# ---- main ---------------------------------------------------------------------

avail_kib=$(awk '/MemAvailable/ {print $2}' /proc/meminfo)
for c in "${CASES[@]}"; do
  for dir in $DIRS; do
    if [ ! -d "$dir" ] || [ ! -w "$dir" ]; then note "skipping $dir: not a writable directory"; continue; fi
    # 1 GiB needs the memhog, memcpy_ref's two buffers and, in tmpfs, the image.
    if [ "$c" = 1G ] && [ "$avail_kib" -lt $((5 * 1048576)) ]; then
      note "skipping 1G: under 5 GiB available"; continue
    fi
    run_case "$c" "$dir"
  done
done

echo "Checkpoint/restore, $(nproc) CPUs, kernel $(uname -r); images in:" \
     "$(for d in $DIRS; do printf '%s (%s) ' "$d" "$(df --output=fstype "$d" 2>/dev/null | tail -1)"; done)"
echo
echo "| case | touched bytes | memcpy (touched / fresh) | dump | dump/memcpy (touched / fresh) | restore | restore/memcpy (touched / fresh) | image size | image/mapped | freeze | memory intact |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo
echo "Goals (ratios against memcpy between touched buffers):"
for dir in $DIRS; do
  if [ -n "${GOAL["1G $dir dump"]+x}" ]; then
    echo "- 1 GiB in $dir: dump ${GOAL["1G $dir dump"]}, restore ${GOAL["1G $dir restore"]}" \
         "(${GOAL["1G $dir restore_fresh"]} of memcpy into fresh memory faulted page by page," \
         "${GOAL["1G $dir restore_pop"]} of memcpy into fresh memory populated in one call," \
         "which takes ${GOAL["1G $dir pop"]}); goal: each within 3x"
  fi
  for c in 1G 1G-8T; do
    if [ -n "${GOAL["$c $dir dump"]+x}" ]; then
      echo "- $(case_label "$c") in $dir (issue \"Engine v2\"): restore ${GOAL["$c $dir restore_pop"]} of" \
           "populate + copy (${GOAL["$c $dir pop"]}), goal 1.3x; dump ${GOAL["$c $dir dump_vmread"]} of" \
           "process_vm_readv into a populated buffer (${GOAL["$c $dir vmread"]}), goal 2x"
    fi
  done
  if [ -n "${GOAL["4G-sparse $dir image"]+x}" ]; then
    echo "- 4 GiB sparse in $dir: image ${GOAL["4G-sparse $dir image"]} of 4 GiB; goal: under 2%"
  fi
  if [ -n "${GOAL["256M-100P $dir image"]+x}" ]; then
    echo "- 256 MiB shared by 100 processes in $dir: image ${GOAL["256M-100P $dir image"]} of the 256 MiB" \
         "(goal: the shared pages once, about 100%), restore ${GOAL["256M-100P $dir restore"]}"
  fi
  if [ -n "${GOAL["64M $dir freeze"]+x}" ]; then
    echo "- 64 MiB in $dir: freeze ${GOAL["64M $dir freeze"]} (noise floor ${GOAL["64M $dir floor"]}); goal: under 50 ms"
  fi
done
echo
printf '%s\n' "${RESULTS[@]}"
exit "$FAILED"
