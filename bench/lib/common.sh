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

# bench_need NAME CMD...: exits naming the first command missing, or roamd.
bench_need() {
  local name=$1 c
  shift
  for c in "$@"; do
    command -v "$c" >/dev/null || { echo "$name: missing $c (scripts/install-deps.sh)" >&2; exit 1; }
  done
  [ -x "$BIN/roamd" ] || { echo "$name: $BIN/roamd not found; build first (make bench)" >&2; exit 1; }
}

# bench_cluster_frame NAME PREFIX: for a benchmark on CLUSTER. DIR, a fresh
# directory under /var/tmp (the nodes' /tmp is private), removed at exit
# with the cluster once CLUSTER_UP=1; note (to stderr, named) and cx; extra
# fds closed; the cwd is /.
bench_cluster_frame() {
  BENCH_NAME=$1
  close_extra_fds
  DIR=$(mktemp -d "/var/tmp/$2.XXXXXX")
  chmod 755 "$DIR"
  CLUSTER_UP=0
  trap bench_cluster_cleanup EXIT
  trap 'exit 130' INT TERM
  cd / || exit 1
}
# shellcheck disable=SC2317  # called by the EXIT trap
bench_cluster_cleanup() {
  [ "$CLUSTER_UP" -eq 1 ] && "$ROAM" cluster down --name "$CLUSTER" >/dev/null 2>&1
  rm -rf "$DIR"
}
note() { echo "${BENCH_NAME:-bench}: $*" >&2; }
cx() { "$ROAM" cluster exec --name "$CLUSTER" "$@"; }

# bench_plain_cluster: CLUSTER up with 4 nodes sharing DIR, formed in n1's
# view, the balancer off on every node (the benchmark moves what it
# moves); exits on failure.
bench_plain_cluster() {
  "$ROAM" cluster down --name "$CLUSTER" >/dev/null 2>&1
  "$ROAM" cluster up --name "$CLUSTER" --nodes 4 --shared "$DIR" >/dev/null || { note "cluster up failed"; exit 1; }
  CLUSTER_UP=1
  local n
  for _ in $(seq 100); do
    cx n1 -- "$ROAM" nodes --json | jq -e '[.nodes[] | select(.state == "alive")] | length == 4' >/dev/null && break
    sleep 0.2
  done
  for n in n1 n2 n3 n4; do cx n1 -- "$ROAM" node balance off $n >/dev/null || { note "balance off on $n failed"; exit 1; }; done
}

# bench_quota_cluster [ARGS...]: CLUSTER up with 4 nodes of CPU quotas
# SHARES (and ARGS for `cluster up`), every node's speed set to 1000 (the
# shares are what these benchmarks are about; calibration alone varies by
# ~15%), formed in n1's view; exits on failure.
bench_quota_cluster() {
  "$ROAM" cluster down --name "$CLUSTER" >/dev/null 2>&1
  if ! "$ROAM" cluster up --name "$CLUSTER" --nodes 4 --cpu-quota "$(IFS=,; echo "${SHARES[*]}")" "$@" >/dev/null; then
    note "cluster up failed"; exit 1
  fi
  CLUSTER_UP=1
  local n i
  for n in n1 n2 n3 n4; do cx "$n" -- "$ROAM" node speed 1000 >/dev/null || { note "roam node speed on $n failed"; exit 1; }; done
  for i in $(seq 100); do
    cx n1 -- "$ROAM" nodes --json |
      jq -e '[.nodes[] | select(.state == "alive" and .speed == 1000 and .cpu_share > 0)] | length == 4' >/dev/null && return
    sleep 0.2
  done
  note "the cluster did not form with every speed set"
  exit 1
}
