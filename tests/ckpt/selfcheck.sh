#!/usr/bin/env bash
# Tests the tests: every zdtm program must PASS without a checkpoint, and
# every failure injection it declares must make it FAIL.
#
# usage: selfcheck.sh [-j JOBS] [--shard I/N] [NAME...]
#
# --shard I/N checks only every N-th program starting at the I-th (0-based),
# so that ctest can run it as N tests, each with its own time limit.
#
# Builds the programs twice with build_zdtm.sh (normally, and with
# -DZDTM_CORRUPT) into a temporary directory, then for each program runs
#   run_zdtm.sh --no-ckpt NAME                        (normal build: PASS)
#   run_zdtm.sh --no-ckpt NAME                        (corrupt build, ZDTM_CORRUPT unset: PASS)
#   ZDTM_CORRUPT=k run_zdtm.sh --no-ckpt --expect-fail NAME
#                                   (corrupt build, each CORRUPT(k) in NAME.c: FAIL)
# and prints one line per run (with its time: a slow program shows) and a
# summary. A run that takes more than 120 s is killed and counts as BAD.
# Exit status 0 if all held.

set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
JOBS=1
SHARD=0/1
while [ $# -gt 0 ]; do
  case $1 in
    -j) JOBS=$2; shift 2 ;;
    --shard) SHARD=$2; shift 2 ;;
    *) break ;;
  esac
done
if ! [[ $SHARD =~ ^([0-9]+)/([1-9][0-9]*)$ ]] || [ "${BASH_REMATCH[1]}" -ge "${BASH_REMATCH[2]}" ]; then
  echo "selfcheck.sh: bad --shard '$SHARD' (want I/N with 0 <= I < N)" >&2
  exit 2
fi
SHARD_I=${BASH_REMATCH[1]} SHARD_N=${BASH_REMATCH[2]}
names=()
if [ $# -eq 0 ]; then
  i=0
  for f in "$HERE"/zdtm/*.c; do
    n=$(basename "$f" .c)
    [ "$n" = lib ] && continue
    [ $((i++ % SHARD_N)) -eq "$SHARD_I" ] && names+=("$n")
  done
else
  names=("$@")
fi

OUT=$(mktemp -d "${TMPDIR:-/tmp}/zdtm-selfcheck.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
"$HERE/build_zdtm.sh" "$OUT/normal" "${names[@]}" >/dev/null || exit 1
"$HERE/build_zdtm.sh" "$OUT/corrupt" --corrupt "${names[@]}" >/dev/null || exit 1

# One job per line: "BUILD K NAME" (K = 0: no injection, expect PASS).
jobs_file="$OUT/jobs"
: >"$jobs_file"
for n in "${names[@]}"; do
  echo "normal 0 $n" >>"$jobs_file"
  echo "corrupt 0 $n" >>"$jobs_file"
  for k in $(grep -o 'CORRUPT([0-9]*)' "$HERE/zdtm/$n.c" | tr -dc '0-9\n' | sort -un); do
    echo "corrupt $k $n" >>"$jobs_file"
  done
done

run_one() {  # run_one BUILD K NAME
  local build=$1 k=$2 n=$3 args=(--no-ckpt) t0=$SECONDS
  local out="$OUT/run.$build.$k.$n"
  [ "$k" != 0 ] && args+=(--expect-fail)
  # Output to a file, not $(...): a process that outlives the runner while
  # holding a pipe would make the check wait for it.
  ZDTM_BIN="$OUT/$build" ZDTM_CORRUPT=$k timeout -k 5 120 \
    bash "$HERE/run_zdtm.sh" "${args[@]}" "$n" >"$out" 2>&1 </dev/null
  local rc=$?
  local what="$n ($build build"
  [ "$k" != 0 ] && what="$what, CORRUPT($k)"
  what="$what, $((SECONDS - t0)) s)"
  if [ $rc -eq 0 ] || [ $rc -eq 77 ]; then
    echo "ok   $what: $(tail -1 "$out" | sed 's/^zdtm [^:]*: //' | cut -c1-160)"
  else
    [ $rc -eq 124 ] && what="$what killed after 120 s"
    echo "BAD  $what:"
    sed 's/^/       /' "$out" | tail -25
  fi
}
export -f run_one
export HERE OUT

xargs -P "$JOBS" -L 1 bash -c 'run_one "$@"' _ <"$jobs_file" | tee "$OUT/results"
total=$(wc -l <"$jobs_file")
bad=$(grep -c '^BAD' "$OUT/results")
echo "selfcheck: $((total - bad)) of $total runs as expected, $bad not"
[ "$bad" -eq 0 ]
