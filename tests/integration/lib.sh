# Shared helpers for the integration tests: each test script sources this,
# sets CLUSTER, and reports checks with pass/fail; `finish` prints the
# closing "N passed, N failed" line and sets the exit status.
# Timing goals from the issues are reported, never asserted: these machines
# are shared and noisy. Deadlines below are generous upper bounds only.

# Only fds 0-2 reach what a test starts. A job that inherits a pipe from
# whoever ran the test (a CI harness, a terminal tool) holds a file that
# leads outside its tree: it cannot move, and a balancer test sees its
# moves fail. Seen: test_balance under a harness that left two pipes open.
# The fd through which bash reads the test script is kept.
close_inherited_fds() {
  local p fd script
  script=$(readlink -f "$0")
  for p in /proc/$$/fd/*; do
    fd=${p##*/}
    [ "$fd" -gt 2 ] 2>/dev/null || continue
    [ "$(readlink "$p")" = "$script" ] && continue
    eval "exec $fd>&-" 2>/dev/null
  done
}
close_inherited_fds

ROAM_BIN=${ROAM_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../build/bin" && pwd)}
ROAM="$ROAM_BIN/roam"
PASSED=0
FAILED=0

pass() { echo "PASS $*"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL $*"; FAILED=$((FAILED + 1)); }
check() {  # check NAME CMD...: pass if CMD succeeds
  local name=$1; shift
  if "$@" >/dev/null; then pass "$name"; else fail "$name"; fi
}
finish() {
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}

now_ms() { date +%s%3N; }

# wait_until SECONDS CMD...: polls CMD every 0.2 s; prints the seconds it took.
wait_until() {
  local limit=$1; shift
  local start; start=$(now_ms)
  while true; do
    if "$@" >/dev/null 2>&1; then
      echo "$(( $(now_ms) - start ))" | awk '{printf "%.1f", $1/1000}'
      return 0
    fi
    if [ $(( $(now_ms) - start )) -ge $((limit * 1000)) ]; then return 1; fi
    sleep 0.2
  done
}

cx() { "$ROAM" cluster exec --name "$CLUSTER" "$@"; }  # cx NODE -- CMD...

# The JSON of `roam nodes --json` as seen from NODE.
nodes_json() { cx "$1" -- "$ROAM" nodes --json; }

# state_seen OBSERVER SUBJECT: the state OBSERVER's roamd holds for SUBJECT ("none" if unknown).
state_seen() {
  nodes_json "$1" 2>/dev/null | jq -r --arg s "$2" '[.nodes[] | select(.name == $s) | .state] | first // "none"'
}

# all_see SUBJECT STATE OBSERVERS...: true if every observer holds SUBJECT in STATE.
all_see() {
  local subject=$1 state=$2; shift 2
  local o
  for o in "$@"; do [ "$(state_seen "$o" "$subject")" = "$state" ] || return 1; done
}

# full_mesh NODES...: every node sees every listed node alive.
full_mesh() {
  local o
  for o in "$@"; do
    local n
    n=$(nodes_json "$o" 2>/dev/null | jq -r '[.nodes[] | select(.state == "alive") | .name] | join(" ")')
    local s
    for s in "$@"; do [[ " $n " == *" $s "* ]] || return 1; done
  done
}

# balance_off NODES...: no automatic move on, to or from these nodes, for
# tests whose processes move only when the test moves them.
balance_off() {
  local n
  for n in "$@"; do cx n1 -- "$ROAM" node balance off "$n" >/dev/null || fail "roam node balance off $n"; done
}

# json_field NODE SUBJECT FIELD: a field of SUBJECT's row in NODE's view.
json_field() {
  nodes_json "$1" 2>/dev/null | jq -r --arg s "$2" --arg f "$3" '[.nodes[] | select(.name == $s) | .[$f]] | if length == 0 then "" else .[0] end'
}

counter() {  # counter NODE NAME
  nodes_json "$1" | jq -r --arg c "$2" '.counters[$c]'
}

status_field() {  # status_field NODE FIELD: from `roam cluster status --json`
  "$ROAM" cluster status --name "$CLUSTER" --json | jq -r --arg s "$1" --arg f "$2" '[.nodes[] | select(.name == $s) | .[$f]] | first // ""'
}
roamd_pid() { local p; p=$(status_field "$1" roamd_pid); echo "${p:-0}"; }
node_address() { status_field "$1" address; }

pid_gone() { ! kill -0 "$1" 2>/dev/null; }

# test_frame NAME: the frame of a cluster test, for CLUSTER. DATA: a fresh
# directory under /var/tmp (each node has its own /tmp), readable by all;
# BG_PIDS: background jobs to kill at the end. At exit the cluster goes
# down, BG_PIDS are killed and DATA is removed. Every cx is cut off after
# CX_LIMIT seconds (60 unless set; then exit 124). Leaves the caller in /,
# a directory every node has (a job's cwd must exist where it runs).
test_frame() {
  DATA=$(mktemp -d "/var/tmp/roam-it-$1.XXXXXX")
  chmod 755 "$DATA"
  BG_PIDS=()
  trap test_frame_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  CX_LIMIT=${CX_LIMIT:-60}
  cx() { timeout -k 5 "$CX_LIMIT" "$ROAM" cluster exec --name "$CLUSTER" "$@"; }
  cd /
}
test_frame_cleanup() {
  "$ROAM" cluster down --name "$CLUSTER" >/dev/null 2>&1
  local p
  for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$DATA"
}

# Jobs of a test_frame test started in n1 and followed from outside:
# bg_start NAME [--in FILE] CMD...: runs CMD inside n1 in the background
# (stdin from FILE or /dev/null, only fds 0-2: a job started at home is
# checkpointed there when it leaves, and a pipe this test's harness leaked
# would be refused), stdout/stderr into $DATA/NAME.out/.err; its PID in n1
# goes to $DATA/NAME.pid, its shell exit status to $DATA/NAME.rc.
bg_start() {
  local name=$1; shift
  local input=/dev/null
  if [ "$1" = --in ]; then input=$2; shift 2; fi
  CX_LIMIT=300 cx n1 -- bash -c '
    d=$1; n=$2; in=$3; shift 3
    for fd in /proc/$$/fd/*; do f=${fd##*/}; [ "$f" -gt 2 ] 2>/dev/null && eval "exec $f>&-"; done
    "$@" <"$in" >"$d/$n.out" 2>"$d/$n.err" &
    p=$!
    echo $p >"$d/$n.pid.tmp" && mv "$d/$n.pid.tmp" "$d/$n.pid"
    wait $p
    echo $? >"$d/$n.rc.tmp" && mv "$d/$n.rc.tmp" "$d/$n.rc"
  ' _ "$DATA" "$name" "$input" "$@" 2>"$DATA/$name.sh.err" &
  BG_PIDS+=($!)
}
bg_pid() { wait_until 10 test -s "$DATA/$1.pid" >/dev/null && cat "$DATA/$1.pid"; }  # bg_pid NAME
# bg_rc NAME SECONDS: the job's exit status, once it ended ("none" if it runs on).
bg_rc() { if wait_until "$2" test -s "$DATA/$1.rc" >/dev/null; then cat "$DATA/$1.rc"; else echo none; fi; }
# home_ps_field GPID FIELD: a field of GPID in n1's `roam ps --json` ("" if none).
home_ps_field() {
  cx n1 -- "$ROAM" ps --json 2>/dev/null |
    jq -r --arg g "$1" --arg f "$2" '[.processes[] | select(.gpid == $g) | .[$f]] | if length == 0 then "" else (.[0] | tostring) end'
}
