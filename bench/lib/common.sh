# Sourced by the cluster benchmarks (bench/*.sh; not a benchmark itself, so
# bench/run.sh does not run it). The caller has cd'd to the project root.

# bench_bin NAME: sets BIN (ROAM_BIN, or $BUILD/bin, default build/bin, as
# an absolute path) and ROAM, or exits naming what to build.
bench_bin() {
  BIN=${ROAM_BIN:-${BUILD:-build}/bin}
  BIN=$(cd "$BIN" 2>/dev/null && pwd) || {
    echo "$1: ${ROAM_BIN:-${BUILD:-build}/bin} not found; build first (make bench)" >&2
    exit 1
  }
  ROAM=$BIN/roam
}

# Only fds 0-2 go to what a benchmark starts: a harness's pipe inherited by
# a moved process, or kept open by a background sshd, would keep the
# harness waiting.
close_extra_fds() {
  local fd_path fd
  for fd_path in "/proc/$$/fd"/*; do
    fd=${fd_path##*/}
    if [ "$fd" -gt 2 ] && [ "$fd" -ne 255 ]; then eval "exec $fd>&-" 2>/dev/null; fi
  done
}
