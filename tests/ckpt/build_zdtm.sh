#!/usr/bin/env bash
# Builds the zdtm test programs without CMake.
# usage: build_zdtm.sh OUTDIR [--corrupt] [NAME...]
#   --corrupt  build with -DZDTM_CORRUPT (failure injection, see lib.h)
# The flags match tests/ckpt/CMakeLists.txt.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# -ge 1 ] || { echo "usage: build_zdtm.sh OUTDIR [--corrupt] [NAME...]" >&2; exit 2; }
OUT=$1; shift
CFLAGS=(-O2 -g -Wall -Wextra -Wno-unused-parameter -D_GNU_SOURCE)
if [ "${1:-}" = --corrupt ]; then CFLAGS+=(-DZDTM_CORRUPT); shift; fi
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for f in "$HERE"/zdtm/*.c; do
    n=$(basename "$f" .c)
    [ "$n" = lib ] || names+=("$n")
  done
fi
mkdir -p "$OUT"
CC=${CC:-gcc}
"$CC" "${CFLAGS[@]}" -c "$HERE/zdtm/lib.c" -o "$OUT/lib.o"
for n in "${names[@]}"; do
  "$CC" "${CFLAGS[@]}" -pthread -o "$OUT/$n" "$HERE/zdtm/$n.c" "$OUT/lib.o" -lm -lrt
done
echo "built ${#names[@]} programs in $OUT"
