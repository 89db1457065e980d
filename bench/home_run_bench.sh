#!/usr/bin/env bash
# `roam run` from a home node, on a 4-node `roam cluster` (n1..n4), every
# figure against a reference measured in the same run, all started on n1:
#
# 1. latency  `roam run --on n2 -- /bin/true`, against a local fork+exec+wait
#             of /bin/true and against `ssh root@n2 /bin/true` (OpenSSH,
#             a fresh connection each time, public-key login, sshd started by
#             this script inside n2). One bash loop inside n1 per method (so
#             `roam cluster exec` costs nothing), RUNS timed runs (SSH_RUNS
#             for ssh: each costs ~0.25 s here) after 5 untimed ones, each
#             timed with $EPOCHREALTIME around the command.
#             Goals: ssh/roam >= 20x, roam/fork+exec <= 5x (medians).
# 2. throughput  `roam run --on n2 -- cat FILE | sha256sum` (FILE: 512 MiB of
#             random bytes in /var/tmp, warm in the page cache), against raw
#             loopback TCP: FILE sent over one 127.0.0.1 connection between
#             two processes into sha256sum (build/bin/tcp_pipe_ref pipe FILE).
#             Wall time inside n1, best of 3 rounds (each round runs every
#             case once, so noise falls on all alike). Every digest is
#             checked against the file's. Goal: roam >= 0.5x raw TCP.
#             For information: both into /dev/null instead, raw TCP from n2
#             to n1 over the cluster's bridge (what roam's own traffic
#             crosses), and a local `cat FILE | sha256sum` (sha256sum's own
#             ceiling).
# 3. jobs     JOBS short jobs (`echo I`) over the 4 nodes, 8 at a time:
#             `roam run --on nK -- echo I` with K round-robin, through
#             `xargs -P 8`, against GNU parallel --sshlogin to the 4 nodes
#             (2 jobs per node, an sshd in every node, one ssh connection per
#             job: parallel's default). Every job's output is checked.
#             parallel runs the first SSH_JOBS of them only (each costs ~0.2 s
#             of this machine; 1000 would take 3-5 minutes), and its wall
#             time is scaled to JOBS (parallel's start and tail are ~1 s of
#             it). Goal: parallel/roam wall time > 1. For information: the
#             same JOBS as local fork+exec through `xargs -P 8`.
#
# ssh's reference leaves out the remote shell's start-up files: sshd sets
# SHLVL=1, so bash does not read ~/.bashrc as it would for an ssh command
# (root's .bashrc on these machines runs `pyenv init`, ~0.7 s a login, which
# would measure pyenv, not ssh). Keys, sshd_config and FILE live in a
# mktemp -d under /var/tmp (the nodes' /tmp is private); sshd only ever runs
# inside the nodes, and everything goes with the cluster on exit.
#
# Goals are reported, never asserted (shared, noisy 2-core machines). Output:
# a Markdown table for docs/BENCHMARKS.md, the goals (met / not met), then
# one RESULT line per figure.
#
# Usage: bench/home_run_bench.sh [--runs N] [--ssh-runs N] [--jobs N] [--ssh-jobs N]
#                           [--file-mib N] [--name CLUSTER]
#                           [latency] [throughput] [jobs]
#        (defaults: 200 runs, 50 ssh runs, 1000 jobs, 250 ssh jobs, 512 MiB,
#        cluster rbench, all parts; about 3 minutes on a quiet machine, most
#        of it ssh's; --ssh-jobs 1000 adds ~2.5 minutes)
#        ROAM_BIN overrides build/bin (BUILD overrides build).
# Needs openssh-server, openssh-client, parallel, jq (scripts/install-deps.sh).
# Exit status: 0 if every figure was measured and every output checked out
# (whether or not a goal is met), 1 if something failed to run.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
. bench/lib/common.sh
bench_bin home_run_bench.sh
TCPREF=$BIN/tcp_pipe_ref

RUNS=200
SSH_RUNS=50
SSH_JOBS=250
JOBS=1000
FILE_MIB=512
CLUSTER=rbench
PARTS=()
usage() {
  echo "usage: bench/home_run_bench.sh [--runs N] [--ssh-runs N] [--jobs N] [--ssh-jobs N] [--file-mib N] [--name CLUSTER] [latency] [throughput] [jobs]" >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case $1 in
    --runs) RUNS=${2:-}; shift 2 || usage ;;
    --ssh-runs) SSH_RUNS=${2:-}; shift 2 || usage ;;
    --ssh-jobs) SSH_JOBS=${2:-}; shift 2 || usage ;;
    --jobs) JOBS=${2:-}; shift 2 || usage ;;
    --file-mib) FILE_MIB=${2:-}; shift 2 || usage ;;
    --name) CLUSTER=${2:-}; shift 2 || usage ;;
    latency|throughput|jobs) PARTS+=("$1"); shift ;;
    *) usage ;;
  esac
done
[[ $RUNS =~ ^[1-9][0-9]*$ && $SSH_RUNS =~ ^[1-9][0-9]*$ && $SSH_JOBS =~ ^[1-9][0-9]*$ && $JOBS =~ ^[1-9][0-9]*$ && $FILE_MIB =~ ^[1-9][0-9]*$ ]] || usage
[ ${#PARTS[@]} -gt 0 ] || PARTS=(latency throughput jobs)
want() { [[ " ${PARTS[*]} " == *" $1 "* ]]; }

missing=()
for f in "$ROAM" "$BIN/roamd" "$TCPREF"; do [ -x "$f" ] || missing+=("$f"); done
for c in /usr/sbin/sshd ssh ssh-keygen parallel jq sha256sum xargs timeout; do
  command -v "$c" >/dev/null || missing+=("$c")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "home_run_bench.sh: missing ${missing[*]} (build with make bench; packages: scripts/install-deps.sh)" >&2
  exit 1
fi

close_extra_fds

WORK=$(mktemp -d /var/tmp/roam-run-bench.XXXXXX)
chmod 755 "$WORK"
SSHD_PIDS=()   # host-side `roam cluster exec` processes running an sshd
CLUSTER_UP=0
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  local p i
  for p in "${SSHD_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done  # forwarded to sshd
  for p in "${SSHD_PIDS[@]}"; do
    for ((i = 0; i < 50; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  done
  # Taking the cluster down ends whatever still runs in the nodes.
  [ "$CLUSTER_UP" -eq 1 ] && "$ROAM" cluster down --name "$CLUSTER" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

FAILED=0
note() { echo "home_run_bench: $*" >&2; }
failed() { note "$*"; FAILED=1; }

# ---- helpers ---------------------------------------------------------------

cx() { "$ROAM" cluster exec --name "$CLUSTER" "$@"; }  # cx NODE -- CMD...
addr() { "$ROAM" cluster status --name "$CLUSTER" --json | jq -r --arg n "$1" '.nodes[] | select(.name == $n) | .address'; }

fmt_us() {  # 1234 -> "1.23 ms"
  awk -v n="$1" 'BEGIN {
    if (n == "") { print "-"; exit }
    if (n < 1e3) printf "%.0f us", n; else if (n < 1e6) printf "%.2f ms", n / 1e3;
    else printf "%.2f s", n / 1e6 }'
}
fmt_rate() { [ -n "$1" ] && echo "$1 MiB/s" || echo "-"; }  # MiB/s
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print ""; else if (a / b >= 100) printf "%.0f", a / b; else printf "%.2f", a / b }'; }
fmt_ratio() { [ -n "$1" ] && echo "${1}x" || echo "-"; }
# goal VALUE OP BOUND: "met", "not met", or "not measured".
goal() {
  [ -n "$1" ] || { echo "not measured"; return; }
  awk -v v="$1" -v op="$2" -v b="$3" 'BEGIN {
    ok = (op == ">=") ? v >= b : (op == "<=") ? v <= b : (op == ">") ? v > b : v < b
    print ok ? "met" : "not met" }'
}
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# Scripts run inside the nodes (WORK is on the shared host filesystem).
cat >"$WORK/latency.sh" <<'EOF'
# latency.sh OUT N CMD...: 5 untimed runs of CMD, then N timed ones; one line
# per timed run in OUT: "microseconds exit_status". Errors go to OUT.err.
out=$1 n=$2
shift 2
for ((i = 0; i < 5; i++)); do "$@" </dev/null >/dev/null 2>>"$out.err"; done
for ((i = 0; i < n; i++)); do
  s=$EPOCHREALTIME
  "$@" </dev/null >/dev/null 2>>"$out.err"
  rc=$?
  e=$EPOCHREALTIME
  echo "$(( 10#${e/[.,]/} - 10#${s/[.,]/} )) $rc"
done >"$out"
EOF
cat >"$WORK/timeit.sh" <<'EOF'
# timeit.sh OUT SCRIPT: runs SCRIPT (bash, pipefail) once and appends
# "microseconds exit_status" to OUT.
set -o pipefail
s=$EPOCHREALTIME
eval "$2"
rc=$?
e=$EPOCHREALTIME
echo "$(( 10#${e/[.,]/} - 10#${s/[.,]/} )) $rc" >>"$1"
EOF

# stats FILE: "median mean count failures" of latency.sh's output (us).
stats() {
  awk '{ print $1, $2 }' "$1" 2>/dev/null | sort -n -k1,1 | awk '
    { v[NR] = $1; sum += $1; if ($2 != 0) bad++ }
    END { if (NR == 0) { print "- - 0 0"; exit }
          m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
          printf "%.0f %.0f %d %d\n", m, sum / NR, NR, bad + 0 }'
}

# timed NAME NODE SECONDS SCRIPT: timeit.sh SCRIPT inside NODE, bounded by
# SECONDS; its "microseconds status" line goes to $WORK/t.NAME. True if
# SCRIPT exited 0.
timed() {
  local name=$1 node=$2 secs=$3 script=$4
  rm -f "$WORK/t.$name"
  timeout -k 5 "$secs" "$ROAM" cluster exec --name "$CLUSTER" "$node" -- \
    bash "$WORK/timeit.sh" "$WORK/t.$name" "$script" </dev/null >>"$WORK/$name.log" 2>&1
  local rc; rc=$(tail -1 "$WORK/t.$name" 2>/dev/null | awk '{print $2}')
  [ "${rc:-1}" = 0 ]
}
last_us() { tail -1 "$WORK/t.$1" 2>/dev/null | awk '$2 == 0 {print $1}'; }
log_tail() { tail -c 300 "$WORK/$1.log" 2>/dev/null | tr '\n' ' '; }

# ---- cluster and sshd ----------------------------------------------------------

echo "roam run benchmark: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit" \
     "$(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) CPUs," \
     "kernel $(uname -r), load average at start $(loadavg)" >&2

start_cluster() {
  "$ROAM" cluster down --name "$CLUSTER" >/dev/null 2>&1  # a leftover of an earlier run
  CLUSTER_UP=1  # from here on, the exit takes down whatever came up
  if ! "$ROAM" cluster up --name "$CLUSTER" --nodes 4 >"$WORK/up.log" 2>&1; then
    echo "home_run_bench.sh: roam cluster up failed: $(log_tail up)" >&2
    return 1
  fi
  # Every roamd must see all four nodes alive before n1 can run on n2.
  local i n
  for ((i = 0; i < 150; i++)); do
    local ok=1
    for n in n1 n2 n3 n4; do
      [ "$(cx "$n" -- "$ROAM" nodes --json 2>/dev/null | jq '[.nodes[] | select(.state == "alive")] | length' 2>/dev/null)" = 4 ] || { ok=0; break; }
    done
    [ $ok -eq 1 ] && return 0
    sleep 0.2
  done
  echo "home_run_bench.sh: the 4 nodes did not all see each other alive within 30 s" >&2
  return 1
}
start_cluster || exit 1
declare -A ADDR
for n in n1 n2 n3 n4; do ADDR[$n]=$(addr "$n"); done

SSH_OK=0
setup_ssh() {
  local k=$WORK/ssh
  mkdir -p "$k"
  ssh-keygen -q -t ed25519 -N '' -C roam-run-bench-host -f "$k/host_key" || return 1
  ssh-keygen -q -t ed25519 -N '' -C roam-run-bench-client -f "$k/client_key" || return 1
  cp "$k/client_key.pub" "$k/authorized_keys"
  cat >"$k/sshd_config" <<EOF
# sshd for bench/home_run_bench.sh, run inside the nodes of cluster $CLUSTER only.
Port 22
ListenAddress 0.0.0.0
HostKey $k/host_key
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile $k/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
PrintLastLog no
PidFile none
# bash skips ~/.bashrc for ssh commands when SHLVL is set (see the header).
SetEnv SHLVL=1
EOF
  local n
  for n in n1 n2 n3 n4; do
    # shellcheck disable=SC2016  # $1 is the inner bash's
    "$ROAM" cluster exec --name "$CLUSTER" "$n" -- bash -c \
      'mkdir -p /run/sshd && exec /usr/sbin/sshd -D -e -f "$1"' _ "$k/sshd_config" \
      </dev/null >"$WORK/sshd.$n.log" 2>&1 &
    SSHD_PIDS+=($!)
    disown $!  # bash still reaps it, without a "Killed" line
  done
  SSH=(ssh -F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
       -o BatchMode=yes -o LogLevel=ERROR -i "$k/client_key")
  # Every sshd answers a login from n1 within 10 s.
  local i
  for n in n1 n2 n3 n4; do
    for ((i = 0; i < 50; i++)); do
      [ "$(cx n1 -- "${SSH[@]}" -o ConnectTimeout=5 "root@${ADDR[$n]}" echo ok </dev/null 2>/dev/null)" = ok ] && continue 2
      sleep 0.2
    done
    echo "home_run_bench.sh: no ssh login to $n (${ADDR[$n]}): $(tail -c 300 "$WORK/sshd.$n.log" | tr '\n' ' ')" >&2
    return 1
  done
  SSH_OK=1
}
if want latency || want jobs; then setup_ssh || failed "ssh references not available"; fi

# Does `roam run` work at all? If not, its figures are skipped (and the run
# fails) while the references are still measured.
ROAM_OK=0
out=$(timeout -k 5 30 "$ROAM" cluster exec --name "$CLUSTER" n1 -- "$ROAM" run --on n2 -- echo ok </dev/null 2>"$WORK/check.err")
rc=$?
if [ $rc -eq 0 ] && [ "$out" = ok ]; then
  ROAM_OK=1
else
  [ $rc -eq 124 ] && rc="killed after 30 s"
  failed "\`roam run --on n2 -- echo ok\` on n1 does not work (exit $rc, output \"$(head -c 100 <<<"$out" | tr '\n' ' ')\"," \
         "stderr \"$(head -c 300 "$WORK/check.err" | tr '\n' ' ')\"); roam's figures are skipped"
fi

ROWS=()
GOALS=()
RESULTS=()

# ---- 1. latency ----------------------------------------------------------------

# lat NAME RUNS SECONDS CMD...: latency.sh in n1 for CMD, bounded by
# SECONDS; sets LAT_MED, LAT_MEAN (us) or leaves them empty and reports the
# failure.
lat() {
  local name=$1 runs=$2 secs=$3; shift 3
  LAT_MED="" LAT_MEAN=""
  local out=$WORK/lat.$name
  timeout -k 5 "$secs" "$ROAM" cluster exec --name "$CLUSTER" n1 -- \
    bash "$WORK/latency.sh" "$out" "$runs" "$@" </dev/null >"$WORK/lat.$name.log" 2>&1
  local med mean count bad
  read -r med mean count bad < <(stats "$out")
  if [ "${count:-0}" -ne "$runs" ] || [ "${bad:-0}" -ne 0 ]; then
    failed "latency $name: ${count:-0} of $runs runs timed, ${bad:-0} failed:" \
           "$(tail -c 300 "$out.err" 2>/dev/null | tr '\n' ' ') $(log_tail "lat.$name")"
    return 1
  fi
  LAT_MED=$med LAT_MEAN=$mean
}

if want latency; then
  note "latency: $RUNS runs of fork+exec and roam run --on n2, $SSH_RUNS of ssh to n2 ($(loadavg))"
  lat fork "$RUNS" 120 /bin/true; F_MED=$LAT_MED F_MEAN=$LAT_MEAN
  R_MED="" R_MEAN=""
  if [ $ROAM_OK -eq 1 ]; then
    lat roam "$RUNS" 300 "$ROAM" run --on n2 -- /bin/true; R_MED=$LAT_MED R_MEAN=$LAT_MEAN
  fi
  S_MED="" S_MEAN=""
  if [ $SSH_OK -eq 1 ]; then
    lat ssh "$SSH_RUNS" 300 "${SSH[@]}" "root@${ADDR[n2]}" /bin/true; S_MED=$LAT_MED S_MEAN=$LAT_MEAN
  fi
  r_fork=$(ratio "$R_MED" "$F_MED"); r_ssh=$(ratio "$S_MED" "$R_MED")
  ROWS+=("| \`roam run --on n2 -- /bin/true\` from n1, median (mean) of $RUNS | $(fmt_us "$R_MED") ($(fmt_us "$R_MEAN")) | local fork+exec+wait: $(fmt_us "$F_MED") ($(fmt_us "$F_MEAN")) | roam/fork+exec $(fmt_ratio "$r_fork") ($(fmt_ratio "$(ratio "$R_MEAN" "$F_MEAN")")) | <= 5x: $(goal "$r_fork" "<=" 5) |")
  ROWS+=("| same | | \`ssh root@n2 /bin/true\`, median (mean) of $SSH_RUNS: $(fmt_us "$S_MED") ($(fmt_us "$S_MEAN")) | ssh/roam $(fmt_ratio "$r_ssh") ($(fmt_ratio "$(ratio "$S_MEAN" "$R_MEAN")")) | >= 20x: $(goal "$r_ssh" ">=" 20) |")
  GOALS+=("- latency: roam/fork+exec $(fmt_ratio "$r_fork") (goal <= 5x: $(goal "$r_fork" "<=" 5)); ssh/roam $(fmt_ratio "$r_ssh") (goal >= 20x: $(goal "$r_ssh" ">=" 20))")
  RESULTS+=("RESULT run_latency runs=$RUNS ssh_runs=$SSH_RUNS fork_median_us=${F_MED:--} fork_mean_us=${F_MEAN:--} roam_median_us=${R_MED:--} roam_mean_us=${R_MEAN:--} ssh_median_us=${S_MED:--} ssh_mean_us=${S_MEAN:--} roam_over_fork=${r_fork:--} ssh_over_roam=${r_ssh:--}")
fi

# ---- 2. throughput -------------------------------------------------------------

# once NAME NODE SCRIPT [DIGEST_FILE]: one timed run of SCRIPT; keeps the
# fastest in BEST[NAME]. With DIGEST_FILE, the sha256sum output written
# there must hold the file's digest. A case that failed once is dropped.
declare -A BEST DROPPED
once() {
  local name=$1 node=$2 script=$3 dig=${4:-} us
  [ -z "${DROPPED[$name]:-}" ] || return 1
  [ -z "$dig" ] || rm -f "$dig"
  if ! timed "$name" "$node" 120 "$script"; then
    failed "throughput $name: run failed: $(log_tail "$name")"; DROPPED[$name]=1; return 1
  fi
  if [ -n "$dig" ] && [ "$(awk '{print $1}' "$dig" 2>/dev/null)" != "$DIGEST" ]; then
    failed "throughput $name: digest $(awk '{print $1}' "$dig" 2>/dev/null) is not the file's $DIGEST"; DROPPED[$name]=1; return 1
  fi
  us=$(last_us "$name")
  if [ -z "${BEST[$name]:-}" ] || [ "$us" -lt "${BEST[$name]}" ]; then BEST[$name]=$us; fi
}
# bytes per second of the fastest run of NAME, in MiB/s ("" if it failed).
mib_s() {
  [ -z "${DROPPED[$1]:-}" ] && [ -n "${BEST[$1]:-}" ] || return 0
  awk -v b="$BYTES" -v us="${BEST[$1]}" 'BEGIN { printf "%.0f", b / 1048576 / (us / 1e6) }'
}

if want throughput; then
  FILE=$WORK/random.bin
  BYTES=$((FILE_MIB * 1048576))
  note "throughput: $FILE_MIB MiB, 3 rounds ($(loadavg))"
  if head -c "$BYTES" /dev/urandom >"$FILE" && DIGEST=$(sha256sum "$FILE" | awk '{print $1}'); then
    cat "$FILE" >/dev/null  # warm
    D=$WORK/digest
    # Three rounds, each running every case once, so that the machine's
    # noise falls on all of them alike; the best run of each is kept.
    for ((round = 0; round < 3; round++)); do
      once tcp_sha n1 "$TCPREF pipe $FILE 2>>$WORK/tcp_sha.err | sha256sum >$D" "$D"
      [ $ROAM_OK -eq 1 ] && once roam_sha n1 "$ROAM run --on n2 -- cat $FILE | sha256sum >$D" "$D"
      once tcp_null n1 "$TCPREF pipe $FILE 2>>$WORK/tcp_null.err >/dev/null"
      [ $ROAM_OK -eq 1 ] && once roam_null n1 "$ROAM run --on n2 -- cat $FILE >/dev/null"
      once local_sha n1 "cat $FILE | sha256sum >$D" "$D"
      # n2 -> n1 over the bridge: the sender in n2 retries its connect every
      # 20 ms until the timed receiver in n1 listens.
      if [ -z "${DROPPED[bridge_sha]:-}" ]; then
        timeout -k 5 120 "$ROAM" cluster exec --name "$CLUSTER" n2 -- \
          "$TCPREF" send "${ADDR[n1]}" 7999 "$FILE" </dev/null >>"$WORK/bridge_send.log" 2>&1 &
        sender=$!
        sleep 0.3
        once bridge_sha n1 "timeout 60 $TCPREF recv ${ADDR[n1]} 7999 2>>$WORK/bridge.err | sha256sum >$D" "$D"
        wait "$sender" || { failed "throughput bridge_sha: sender failed: $(log_tail bridge_send)"; DROPPED[bridge_sha]=1; }
      fi
    done
  else
    failed "throughput: could not write $FILE"
  fi
  TCP_SHA=$(mib_s tcp_sha) ROAM_SHA=$(mib_s roam_sha) TCP_NULL=$(mib_s tcp_null)
  ROAM_NULL=$(mib_s roam_null) LOCAL_SHA=$(mib_s local_sha) XNODE_SHA=$(mib_s bridge_sha)
  rm -f "$FILE"
  r_sha=$(ratio "$ROAM_SHA" "$TCP_SHA"); r_null=$(ratio "$ROAM_NULL" "$TCP_NULL")
  ROWS+=("| \`roam run --on n2 -- cat FILE \\| sha256sum\` on n1, $FILE_MIB MiB, best of 3 | $(fmt_rate "$ROAM_SHA") | raw loopback TCP into sha256sum: $(fmt_rate "$TCP_SHA") | $(fmt_ratio "$r_sha") | >= 0.5x: $(goal "$r_sha" ">=" 0.5) |")
  ROWS+=("| same into /dev/null (information) | $(fmt_rate "$ROAM_NULL") | raw loopback TCP into /dev/null: $(fmt_rate "$TCP_NULL") | $(fmt_ratio "$r_null") | - |")
  ROWS+=("| (information) | | raw TCP n2 -> n1 over the bridge into sha256sum: $(fmt_rate "$XNODE_SHA"); local \`cat FILE \\| sha256sum\`: $(fmt_rate "$LOCAL_SHA") | roam/bridge $(fmt_ratio "$(ratio "$ROAM_SHA" "$XNODE_SHA")") | - |")
  GOALS+=("- throughput into sha256sum: roam/raw TCP $(fmt_ratio "$r_sha") (goal >= 0.5x: $(goal "$r_sha" ">=" 0.5))")
  RESULTS+=("RESULT run_throughput bytes=$BYTES roam_sha_mib_s=${ROAM_SHA:--} tcp_sha_mib_s=${TCP_SHA:--} roam_null_mib_s=${ROAM_NULL:--} tcp_null_mib_s=${TCP_NULL:--} bridge_tcp_sha_mib_s=${XNODE_SHA:--} local_cat_sha_mib_s=${LOCAL_SHA:--} roam_over_tcp=${r_sha:--}")
fi

# ---- 3. many short jobs --------------------------------------------------------

# check_jobs NAME N: its output holds 1..N, each once.
check_jobs() {
  if ! sort -n "$WORK/jobs.$1.out" 2>/dev/null | cmp -s - <(seq "$2"); then
    failed "jobs $1: output is not 1..$2 once each ($(wc -l <"$WORK/jobs.$1.out" 2>/dev/null || echo 0) lines): $(log_tail "jobs_$1")"
    return 1
  fi
}

if want jobs; then
  [ "$SSH_JOBS" -le "$JOBS" ] || SSH_JOBS=$JOBS
  note "jobs: $JOBS through roam run and local xargs, $SSH_JOBS through parallel --sshlogin ($(loadavg))"
  awk -v n="$JOBS" 'BEGIN { for (i = 1; i <= n; i++) printf "run --on n%d -- echo %d\n", (i - 1) % 4 + 1, i }' >"$WORK/jobs.roam.in"
  seq "$JOBS" >"$WORK/jobs.local.in"
  J_ROAM="" J_PAR="" J_LOCAL=""
  if timed jobs_local n1 120 "xargs -P 8 -L 1 /bin/echo <$WORK/jobs.local.in >$WORK/jobs.local.out" && check_jobs local "$JOBS"; then
    J_LOCAL=$(last_us jobs_local)
  fi
  if [ $ROAM_OK -eq 0 ]; then
    :
  elif timed jobs_roam n1 300 "xargs -P 8 -L 1 $ROAM <$WORK/jobs.roam.in >$WORK/jobs.roam.out" && check_jobs roam "$JOBS"; then
    J_ROAM=$(last_us jobs_roam)
  elif [ -z "$(last_us jobs_roam)" ]; then
    failed "jobs roam: failed: $(log_tail jobs_roam)"
  fi
  if [ $SSH_OK -eq 1 ]; then
    logins="2/root@${ADDR[n1]},2/root@${ADDR[n2]},2/root@${ADDR[n3]},2/root@${ADDR[n4]}"
    if timed jobs_parallel n1 400 "seq $SSH_JOBS | PARALLEL_HOME=$WORK/parallel parallel --will-cite --ssh '${SSH[*]}' -S $logins echo {} >$WORK/jobs.parallel.out" \
        && check_jobs parallel "$SSH_JOBS"; then
      J_PAR=$(last_us jobs_parallel)
    elif [ -z "$(last_us jobs_parallel)" ]; then
      failed "jobs parallel: failed: $(log_tail jobs_parallel)"
    fi
  fi
  # parallel's wall time scaled to JOBS jobs (the same when SSH_JOBS = JOBS).
  J_PAR_ALL=""
  [ -n "$J_PAR" ] && J_PAR_ALL=$(awk -v t="$J_PAR" -v a="$JOBS" -v b="$SSH_JOBS" 'BEGIN { printf "%.0f", t * a / b }')
  r_jobs=$(ratio "$J_PAR_ALL" "$J_ROAM")
  if [ "$SSH_JOBS" -eq "$JOBS" ]; then
    par_text=$(fmt_us "$J_PAR")
  else
    par_text="$SSH_JOBS jobs in $(fmt_us "$J_PAR"), so ~$(fmt_us "$J_PAR_ALL") for $JOBS"
  fi
  ROWS+=("| $JOBS \`roam run --on nK -- echo I\` from n1, K round-robin over 4 nodes, \`xargs -P 8\`: wall time | $(fmt_us "$J_ROAM") | \`parallel --sshlogin\` (2 per node, 8 in all): $par_text | parallel/roam $(fmt_ratio "$r_jobs") | > 1x: $(goal "$r_jobs" ">" 1) |")
  ROWS+=("| (information) | | local fork+exec, \`xargs -P 8\`: $(fmt_us "$J_LOCAL") | roam/local $(fmt_ratio "$(ratio "$J_ROAM" "$J_LOCAL")") | - |")
  GOALS+=("- $JOBS short jobs: parallel --sshlogin/roam $(fmt_ratio "$r_jobs") (goal > 1x: $(goal "$r_jobs" ">" 1))")
  RESULTS+=("RESULT run_jobs jobs=$JOBS ssh_jobs=$SSH_JOBS concurrency=8 roam_us=${J_ROAM:--} parallel_ssh_us=${J_PAR:--} parallel_ssh_scaled_us=${J_PAR_ALL:--} local_us=${J_LOCAL:--} parallel_over_roam=${r_jobs:--}")
fi

# ---- report ---------------------------------------------------------------------

echo "roam run from a home node: 4-node roam cluster, everything started on n1; $(nproc) CPUs," \
     "kernel $(uname -r); load average at end $(loadavg)"
echo
echo "| figure | roam | reference | ratio | goal |"
echo "|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo
echo "Goals:"
printf '%s\n' "${GOALS[@]}"
echo
printf '%s\n' "${RESULTS[@]}"
exit "$FAILED"
