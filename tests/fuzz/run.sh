#!/usr/bin/env bash
# Usage: tests/fuzz/run.sh NAME SECONDS
#
# Builds the libFuzzer target tests/fuzz/NAME_fuzz.cc (clang, ASan, UBSan) in
# build-fuzz/ at the top of the tree, writes its seed inputs, and fuzzes it
# for SECONDS. The corpus it grows is kept in build-fuzz/corpus/NAME between
# runs. Exits 0 when nothing was found, otherwise non-zero (libFuzzer's status)
# after printing the path of the input that reproduces the failure:
#   build-fuzz/NAME_fuzz build-fuzz/artifacts/NAME/crash-...
set -euo pipefail

die() { echo "fuzz: $*" >&2; exit 2; }

[ $# -eq 2 ] || die "usage: $0 NAME SECONDS"
name=$1 seconds=$2
[[ $seconds =~ ^[0-9]+$ ]] || die "SECONDS must be a whole number, not '$seconds'"
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$root/build-fuzz
[ -f "$here/${name}_fuzz.cc" ] || die "no fuzz target $here/${name}_fuzz.cc"

# ---- tools -----------------------------------------------------------------------
for tool in clang++ protoc make pkg-config flock; do
  command -v "$tool" >/dev/null || die "$tool not found (scripts/install-deps.sh installs it)"
done
runtime=$(clang++ -print-file-name=libclang_rt.fuzzer-x86_64.a)
[ -f "$runtime" ] || die "clang's libFuzzer runtime is missing (install libclang-rt-14-dev: scripts/install-deps.sh)"

# ---- build (serialized: ctest may start several runs at once) ---------------------
mkdir -p "$out"
bin=$out/${name}_fuzz
(
  flock 9
  make -C "$here" -s -j"$(nproc)" OUT="$out" "$bin"
) 9>"$out/.build.lock" || die "build of $bin failed"

# ---- seeds and run -----------------------------------------------------------------
seeds=$out/seeds/$name corpus=$out/corpus/$name artifacts=$out/artifacts/$name log=$out/$name.log
mkdir -p "$seeds" "$corpus" "$artifacts"
ROAM_FUZZ_WRITE_SEEDS=$seeds "$bin" 2>/dev/null || die "$bin could not write its seeds to $seeds"

flags=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
       -artifact_prefix="$artifacts/")
[ -f "$here/$name.dict" ] && flags+=(-dict="$here/$name.dict")

echo "fuzz: $name for ${seconds}s (log: $log)"
status=0
# New inputs go to the first directory; the seeds are only read.
"$bin" "${flags[@]}" "$corpus" "$seeds" >"$log" 2>&1 || status=$?

# Last status line ("#N DONE cov: ... exec/s: ...") and the totals.
grep -E '^#[0-9]+' "$log" | tail -n 1 || true
grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" || true

if [ "$status" -ne 0 ]; then
  echo "fuzz: $name FAILED (libFuzzer exit status $status); the end of $log:" >&2
  grep -v -E '^#[0-9]+' "$log" | tail -n 40 >&2
  written=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log")
  if [ -n "$written" ]; then
    echo "fuzz: reproduce with: $bin $written" >&2
  fi
  exit "$status"
fi
echo "fuzz: $name OK"
