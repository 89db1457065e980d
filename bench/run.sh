#!/usr/bin/env bash
# Runs every benchmark against an existing build (`make bench` builds first):
# build/bin/swim_sim_bench, then each other bench/*.sh script in name order.
# Everything printed is also kept in $BUILD/bench-results.txt (BUILD defaults
# to build). Arguments are passed to swim_sim_bench (e.g. --sizes=10,100).
# Exit status: 0 if every benchmark exited 0, else 1 (all are run anyway).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
results=$BUILD/bench-results.txt

if [ ! -x "$BUILD/bin/swim_sim_bench" ]; then
  echo "run.sh: $BUILD/bin/swim_sim_bench not found; build first (make bench)" >&2
  exit 1
fi

failed=()

# run NAME COMMAND...: one benchmark, framed by its name, exit status and time.
run() {
  local name=$1
  shift
  echo
  echo "## $name"
  local start=$SECONDS
  "$@"
  local rc=$?
  echo "## $name: exit $rc, $((SECONDS - start)) s"
  [ "$rc" -eq 0 ] || failed+=("$name")
}

run_all() {
  echo "# roam benchmarks: $(date -u '+%Y-%m-%d %H:%M:%S UTC')," \
       "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)," \
       "$(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) RAM"
  run swim_sim_bench "$BUILD/bin/swim_sim_bench" "$@"
  local script
  for script in bench/*.sh; do
    [ "$script" = bench/run.sh ] && continue
    run "$(basename "$script")" bash "$script"
  done
  echo
  if [ ${#failed[@]} -gt 0 ]; then
    echo "# failed: ${failed[*]} (results in $results)"
    return 1
  fi
  echo "# all benchmarks exited 0 (results in $results)"
}

run_all "$@" 2>&1 | tee "$results"
exit "${PIPESTATUS[0]}"
