#!/usr/bin/env bash
# Runs one zdtm-style test program through `roam checkpoint` / `roam restore`.
#
# usage: run_zdtm.sh [options] NAME
#   --no-ckpt        no checkpoint: capture the state twice 1 s apart, compare,
#                    then SIGTERM (proves the program PASSes on its own and
#                    that the captured state is stable)
#   --leave-running  checkpoint with --leave-running, twice: the tree must
#                    keep running untouched; it is then killed and restored
#                    from the second image (what the first one's resume left,
#                    e.g. calls resumed through restart_syscall, must dump)
#   --iters N        checkpoint/restore N times in a row (default 1)
#   --expect-fail    the program must print FAIL and exit 1 (for selfcheck.sh,
#                    with a build made with -DZDTM_CORRUPT)
#   --no-setsid      start the program in the runner's session instead of its
#                    own (by default the tree owns its session and groups)
#   --keep           keep the work directory even when the test passes
#
# The program (ZDTM_BIN/NAME, ZDTM_BIN defaults to build/zdtm) runs in a fresh
# directory with stdin from /dev/null and stdout+stderr to NAME.log there. The
# runner waits for READY, captures the tree's state (zdtm_capture.py: maps,
# fds, status fields, ids), checkpoints it, checks that every process is gone,
# restores it with `roam restore` in the background, waits until the captured
# state equals the one from before (printing the diff if it never does), sends
# SIGTERM to the root and requires `roam restore` to exit 0 and the log to
# hold "PASS" and no "FAIL".
#
# A program named tty_* runs on a terminal of its own (zdtm_pty.py: it leads
# a session whose controlling terminal is a new pty at its fds 0-2, and a
# relay copies the terminal's output into the log); `roam restore` is then
# given that terminal as its fds 0-2.
#
# A program named ipc_* runs in an IPC namespace of its own, held by a
# `sleep` beside it. The first restore, and every other one after it, go to
# a new namespace (its System V objects must be made again, with their
# ids); the second, fourth ... to the same one (they are still there).
#
# Lines the program prints before READY change the procedure (lib.h):
#   ZDTM-EXPECT-REFUSAL: RE  the checkpoint must fail with one line on stderr
#                            matching every RE; the tree must be untouched.
#   ZDTM-STOP-BEFORE-CKPT    SIGSTOP before the capture, still stopped after
#                            the restore, SIGCONT before the SIGTERM.
#   ZDTM-REMOVE-AFTER-CKPT: PATH  removed once the tree is checkpointed (a
#                            node-local file the restore must place again),
#                            and at the end.
#   SKIP: reason             (instead of READY) the test is skipped: exit 77.
#
# Exit status: 0 pass, 1 fail, 77 skip. The last line is a one-line summary.

set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
ROAM_BIN=${ROAM_BIN:-$TOP/build/bin}
ZDTM_BIN=${ZDTM_BIN:-$TOP/build/zdtm}
ROAM="$ROAM_BIN/roam"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
CAPTURE=("$PY" "$HERE/zdtm_capture.py")

MODE=ckpt
LEAVE=0
ITERS=1
EXPECT_FAIL=0
SETSID=1
KEEP=0
while [ $# -gt 0 ]; do
  case $1 in
    --no-ckpt) MODE=none ;;
    --leave-running) LEAVE=1 ;;
    --iters) ITERS=$2; shift ;;
    --expect-fail) EXPECT_FAIL=1 ;;
    --no-setsid) SETSID=0 ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "run_zdtm.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
  shift
done
[ $# -eq 1 ] || { echo "usage: run_zdtm.sh [options] NAME" >&2; exit 2; }
[[ $ITERS =~ ^[1-9][0-9]*$ ]] || { echo "run_zdtm.sh: --iters needs a count" >&2; exit 2; }
NAME=$1
BIN="$ZDTM_BIN/$NAME"
VARIANT=$NAME
[ "$MODE" = none ] && VARIANT="$NAME --no-ckpt"
[ "$LEAVE" = 1 ] && VARIANT="$VARIANT --leave-running"
[ "$ITERS" != 1 ] && VARIANT="$VARIANT --iters $ITERS"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/zdtm-$NAME.XXXXXX")
LOG="$WORK/$NAME.log"
# bash reports the death of the SIGKILLed root ("Killed") on stderr: keep the
# runner's own stderr in a file, shown when the test fails.
exec 2>"$WORK/runner.err"
ROOT=""            # pid of the test's root process
ROOT_IS_CHILD=1    # the root is our child (else `roam restore`'s)
RESTORE_PID=""     # the `roam restore` running in the background
PIDS=()            # every pid of the tree, from the first capture
REMOVE=()          # ZDTM-REMOVE-AFTER-CKPT files
FINISHED=""

now_ms() { date +%s%3N; }
msg() { echo "  $*"; }

# ---- ending ----------------------------------------------------------------

cleanup() {
  # Only processes that are ours: our own children, or pids still running
  # the test binary.
  local p
  # The root too, before the tree was captured: `wait` below would never
  # return for a child left stopped.
  for p in "${PIDS[@]}" ${ROOT:+"$ROOT"}; do
    [ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$BIN" ] && kill -KILL "$p" 2>/dev/null
  done
  [ -n "$RESTORE_PID" ] && kill -KILL "$RESTORE_PID" 2>/dev/null
  RESTORE_PID=""
  PIDS=()
  [ -n "$IPC_HOLDER" ] && kill -KILL "$IPC_HOLDER" 2>/dev/null
  IPC_HOLDER=""
  wait 2>/dev/null
  [ ${#REMOVE[@]} -gt 0 ] && rm -f -- "${REMOVE[@]}"
  stop_relay
}

# ipc_* programs: a new IPC namespace, held by a sleep (IPC_HOLDER) until
# the next one; IN_IPC is the command prefix that enters it.
IPC_HOLDER=""
IN_IPC=()
holder_unshared() {
  local ns
  ns=$(readlink "/proc/$IPC_HOLDER/ns/ipc" 2>/dev/null) && [ "$ns" != "$(readlink /proc/self/ns/ipc)" ]
}
new_ipc_namespace() {
  [ -n "$IPC_HOLDER" ] && kill -KILL "$IPC_HOLDER" 2>/dev/null && wait "$IPC_HOLDER" 2>/dev/null
  unshare --ipc sleep 100000 </dev/null >/dev/null 2>&1 &
  IPC_HOLDER=$!
  wait_for 2 holder_unshared || die "no IPC namespace of its own for the program"
  IN_IPC=(nsenter "--ipc=/proc/$IPC_HOLDER/ns/ipc")
}

# A tty_* program's terminal relay: once the program's last words are in
# the log (or 2 s), it goes.
stop_relay() {
  [ -s "$WORK/pty.relay" ] || return 0
  local relay
  relay=$(cat "$WORK/pty.relay")
  rm -f "$WORK/pty.relay"
  wait_for 2 grep -qE '^(PASS|FAIL|SKIP)' "$LOG"
  kill -TERM "$relay" 2>/dev/null
}

finish() {  # finish STATUS TEXT
  local status=$1; shift
  FINISHED=1
  cleanup
  if [ "$status" -ne 0 ] && [ "$status" -ne 77 ]; then
    echo "---- $NAME.log ----"
    cat "$LOG" 2>/dev/null
    if [ -s "$WORK/runner.err" ]; then
      echo "---- runner's stderr ----"
      grep -v ' Killed ' "$WORK/runner.err"
    fi
    echo "---- end of log; work directory kept: $WORK"
  elif [ "$KEEP" = 1 ]; then
    echo "work directory kept: $WORK"
  else
    rm -rf "$WORK"
  fi
  echo "zdtm $VARIANT: $*"
  exit "$status"
}
die() { finish 1 "FAIL: $*"; }
trap 'die "interrupted"' INT TERM
# An unexpected exit of the runner itself (a bug in it) still cleans up and
# says so.
on_exit() {
  [ -n "$FINISHED" ] && return
  cleanup
  cat "$WORK/runner.err"
  echo "zdtm $VARIANT: FAIL: run_zdtm.sh stopped unexpectedly; work directory kept: $WORK"
}
trap on_exit EXIT

# ---- helpers -----------------------------------------------------------------

# wait_for SECONDS CMD...: polls CMD every 50 ms; false on timeout.
wait_for() {
  local limit=$(( $1 * 1000 )); shift
  local start; start=$(now_ms)
  until "$@"; do
    [ $(( $(now_ms) - start )) -ge "$limit" ] && return 1
    sleep 0.05
  done
}

proc_state() { awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null; }
# A zombie of the tree (a child exited and not waited for) is as alive as
# it can be when it is a zombie again.
ZOMBIES=" "
alive() {
  [ -e "/proc/$1" ] || return 1
  [ "$(proc_state "$1")" != Z ] || [[ $ZOMBIES == *" $1 "* ]]
}
gone() { [ ! -e "/proc/$1" ]; }
all_gone() { local p; for p in "${PIDS[@]}"; do gone "$p" || return 1; done; }
all_alive() { local p; for p in "${PIDS[@]}"; do alive "$p" || return 1; done; }
log_has() { grep -q "$1" "$LOG" 2>/dev/null; }
ready_or_exited() { log_has '^READY$' || log_has '^SKIP:' || ! alive "$ROOT"; }

capture() {  # capture FILE
  "${CAPTURE[@]}" "$ROOT" >"$1" 2>&1
}

# same_as_before FILE: capture into FILE and compare with before.txt.
same_as_before() {
  capture "$1" && cmp -s "$WORK/before.txt" "$1"
}

show_diff() {  # show_diff FILE WHAT
  echo "---- state $2 differs (- before, + after) ----"
  diff -u "$WORK/before.txt" "$1" | sed -n '3,200p'
}

# reap_root: collects the root's exit status into ROOT_STATUS.
reap_root() {
  if [ "$ROOT_IS_CHILD" = 1 ]; then
    wait "$ROOT" 2>/dev/null; ROOT_STATUS=$?
  else
    wait "$RESTORE_PID" 2>/dev/null; ROOT_STATUS=$?
    RESTORE_PID=""
  fi
}

# ---- start -------------------------------------------------------------------

[ -x "$BIN" ] || die "no test program $BIN (build it first)"
if [ "$MODE" = ckpt ] && [ ! -x "$ROAM" ]; then die "no roam binary at $ROAM"; fi
cd "$WORK" || die "cd $WORK"
# start_program: execs the test program in its own session, with nothing of
# the runner's leaking into it (every fd above 2 closed).
start_program() {
  local fd
  for fd in /proc/$BASHPID/fd/*; do
    fd=${fd##*/}
    [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-"
  done
  if [ "$TTY" = 1 ]; then exec "$PY" "$HERE/zdtm_pty.py" "$LOG" "$WORK" "$BIN"; fi
  if [ "$SETSID" = 1 ]; then exec "${IN_IPC[@]}" setsid "$BIN"; else exec "${IN_IPC[@]}" "$BIN"; fi
}
TTY=0
case $NAME in tty_*) TTY=1 ;; esac
IPC=0
case $NAME in ipc_*) IPC=1; new_ipc_namespace ;; esac
set +m
start_program </dev/null >>"$LOG" 2>&1 &
ROOT=$!
wait_for 2 test "$(readlink "/proc/$ROOT/exe" 2>/dev/null)" = "$BIN" ||
  log_has . || die "the program did not start as pid $ROOT"
wait_for 30 ready_or_exited || die "no READY within 30 s"
if log_has '^SKIP:'; then
  reap_root
  finish 77 "SKIP ($(grep -m1 '^SKIP:' "$LOG" | cut -c7-))"
fi
if ! log_has '^READY$'; then
  reap_root
  die "the program exited (status $ROOT_STATUS) before READY"
fi

mapfile -t REFUSAL < <(sed -n 's/^ZDTM-EXPECT-REFUSAL: //p' "$LOG")
STOP=0
log_has '^ZDTM-STOP-BEFORE-CKPT$' && STOP=1
mapfile -t REMOVE < <(sed -n 's/^ZDTM-REMOVE-AFTER-CKPT: //p' "$LOG")

if [ "$STOP" = 1 ]; then
  # Sent again if the first did not take: under a loaded selfcheck the
  # program was seen never to stop (and the runner then hung, see cleanup).
  stopped=0
  for _ in 1 2 3; do
    kill -STOP "$ROOT"
    wait_for 5 test "$(proc_state "$ROOT")" = T && { stopped=1; break; }
    msg "pid $ROOT not stopped after 5 s (State $(proc_state "$ROOT")); SIGSTOP again"
  done
  [ "$stopped" = 1 ] || die "pid $ROOT did not stop"
fi
capture "$WORK/before.txt" || die "cannot capture the state of pid $ROOT"
mapfile -t PIDS < <(sed -n 's/^== pid \([0-9]*\) .*/\1/p' "$WORK/before.txt")
ZOMBIES=" $(awk '/^== pid/ {p = $3} /^  State: Z/ {printf "%s ", p}' "$WORK/before.txt")"

msg "tree: ${PIDS[*]}"

# ---- checkpoint and restore ------------------------------------------------

checkpoint_refused() {
  local err="$WORK/checkpoint.err" rc re
  "$ROAM" checkpoint "$ROOT" -D "$WORK/img" >"$WORK/checkpoint.out" 2>"$err"
  rc=$?
  msg "roam checkpoint exited $rc: $(head -c 300 "$err")"
  [ "$rc" -ne 0 ] || die "roam checkpoint succeeded; a refusal was expected"
  [ "$(wc -l <"$err")" -eq 1 ] || die "the refusal is $(wc -l <"$err") lines on stderr, expected 1"
  for re in "${REFUSAL[@]}"; do
    grep -qiE -- "$re" "$err" || die "the refusal does not match /$re/"
  done
  all_alive || die "a process of the tree is gone after the refused checkpoint"
  wait_for 5 same_as_before "$WORK/after.txt" || {
    show_diff "$WORK/after.txt" "after the refused checkpoint"
    die "the refused checkpoint changed the tree's state"
  }
}

# restore_settled: `roam restore` ended, or the tree is back as it was.
restore_settled() {
  ! kill -0 "$RESTORE_PID" 2>/dev/null || { all_alive && same_as_before "$WORK/after$ITER.txt"; }
}

checkpoint_restore() {  # checkpoint_restore ITERATION
  local img="$WORK/img$1" t0 rc p
  local args=(checkpoint "$ROOT" -D "$img")
  [ "$LEAVE" = 1 ] && args+=(--leave-running)
  if [ "$LEAVE" = 1 ]; then
    "$ROAM" checkpoint "$ROOT" -D "$img.first" --leave-running >"$WORK/checkpoint$1.first.out" 2>&1 || {
      cat "$WORK/checkpoint$1.first.out"
      die "the first roam checkpoint --leave-running failed"
    }
    all_alive || die "--leave-running: a process of the tree is gone after the first checkpoint"
  fi
  t0=$(now_ms)
  "$ROAM" "${args[@]}" >"$WORK/checkpoint$1.out" 2>"$WORK/checkpoint$1.err"
  rc=$?
  CKPT_MS=$(( $(now_ms) - t0 ))
  if [ "$rc" -ne 0 ]; then
    cat "$WORK/checkpoint$1.err"
    die "roam checkpoint exited $rc"
  fi
  if [ "$LEAVE" = 1 ]; then
    all_alive || die "--leave-running: a process of the tree is gone after the checkpoint"
    wait_for 5 same_as_before "$WORK/left$1.txt" || {
      show_diff "$WORK/left$1.txt" "after checkpoint --leave-running"
      die "--leave-running: the checkpoint changed the running tree"
    }
    kill -KILL "${PIDS[@]}" 2>/dev/null
  fi
  # The root is our child or the previous `roam restore`'s: reap it, then
  # wait for PID 1 to reap the rest.
  reap_root
  wait_for 5 all_gone || {
    local p
    for p in "${PIDS[@]}"; do
      gone "$p" || msg "pid $p: $(readlink "/proc/$p/exe") state $(proc_state "$p")"
    done
    die "processes of the tree still exist 5 s after the checkpoint"
  }
  [ ${#REMOVE[@]} -gt 0 ] && rm -f -- "${REMOVE[@]}"

  t0=$(now_ms)
  if [ "$TTY" = 1 ]; then
    local pty
    pty=$(cat "$WORK/pty.name")
    # fds 0-2 all the terminal, as the program had them (its own errors
    # then reach the log through the relay).
    "$ROAM" restore -D "$img" <>"$pty" >&0 2>&0 &
  else
    if [ "$IPC" = 1 ] && [ $(($1 % 2)) = 1 ]; then new_ipc_namespace; fi
    "${IN_IPC[@]}" "$ROAM" restore -D "$img" >"$WORK/restore$1.out" 2>"$WORK/restore$1.err" &
  fi
  RESTORE_PID=$!
  ROOT_IS_CHILD=0
  ITER=$1
  wait_for 30 restore_settled
  if ! kill -0 "$RESTORE_PID" 2>/dev/null; then
    wait "$RESTORE_PID"; rc=$?; RESTORE_PID=""
    cat "$WORK/restore$1.err"
    die "roam restore exited $rc before the SIGTERM"
  fi
  if ! all_alive; then
    for p in "${PIDS[@]}"; do alive "$p" || msg "pid $p is not running"; done
    die "the tree is not back 30 s after roam restore started"
  fi
  if ! cmp -s "$WORK/before.txt" "$WORK/after$1.txt"; then
    show_diff "$WORK/after$1.txt" "after restore $1"
    die "the restored tree's state differs"
  fi
  RESTORE_MS=$(( $(now_ms) - t0 ))
  msg "checkpoint $1: ${CKPT_MS} ms; restore: ${RESTORE_MS} ms (until the state matched)"
}

if [ "$MODE" = none ]; then
  sleep 1
  all_alive || die "a process of the tree exited before the SIGTERM"
  same_as_before "$WORK/after.txt" || {
    show_diff "$WORK/after.txt" "1 s later (no checkpoint)"
    die "the state changed without a checkpoint"
  }
elif [ ${#REFUSAL[@]} -gt 0 ]; then
  checkpoint_refused
else
  for ((i = 1; i <= ITERS; i++)); do
    checkpoint_restore "$i"
  done
fi

# ---- resume and collect ----------------------------------------------------

if [ "$STOP" = 1 ]; then
  [ "$(proc_state "$ROOT")" = T ] || die "pid $ROOT is not stopped (State $(proc_state "$ROOT"))"
  for task in /proc/"$ROOT"/task/*; do  # every thread, not only the leader
    state=$(sed 's/.*) //' "$task/stat" 2>/dev/null | cut -d' ' -f1)
    [ "$state" = T ] || die "thread ${task##*/} of pid $ROOT is not stopped (state $state)"
  done
  kill -CONT "$ROOT"
  wait_for 5 test "$(proc_state "$ROOT")" != T || die "pid $ROOT did not continue"
fi
kill -TERM "$ROOT" || die "cannot send SIGTERM to pid $ROOT"
root_done() {
  if [ "$ROOT_IS_CHILD" = 1 ]; then ! alive "$ROOT"; else ! kill -0 "$RESTORE_PID" 2>/dev/null; fi
}
wait_for 60 root_done || die "pid $ROOT did not exit within 60 s of SIGTERM"
reap_root
stop_relay

if log_has '^SKIP:'; then
  finish 77 "SKIP ($(grep -m1 '^SKIP:' "$LOG" | cut -c7-))"
fi
if [ "$EXPECT_FAIL" = 1 ]; then
  [ "$ROOT_STATUS" -eq 1 ] || die "expected exit status 1 (FAIL), got $ROOT_STATUS"
  log_has '^FAIL' || die "expected a FAIL line"
  finish 0 "XFAIL as expected: $(grep -m1 '^FAIL' "$LOG" | cut -c1-150)"
fi
[ "$ROOT_STATUS" -eq 0 ] || die "exit status $ROOT_STATUS"
log_has '^FAIL' && die "$(grep -m1 '^FAIL' "$LOG")"
log_has '^PASS$' || die "no PASS in the log"
finish 0 "PASS"
