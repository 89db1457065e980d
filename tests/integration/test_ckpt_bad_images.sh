#!/usr/bin/env bash
# Bad input to the engine gets one clear line and loses nothing (on this
# host, no cluster):
#   - truncated, bit-flipped, wrong-magic, newer-version and incomplete
#     images are refused by `roam restore` with one line, and no process is
#     started (the dumped PID stays free);
#   - a restore whose PID is taken says by whom, and starts nothing;
#   - a restore that fails halfway (a file the process had open is gone)
#     kills what it created, leaves no recreated deleted file behind, and
#     succeeds once the file is back;
#   - a checkpoint refused (a socket, a second thread) leaves the process
#     running untouched and no partial image files behind;
#   - an ordinary user is told at once that checkpoint and restore need
#     root, and nothing is dumped, started or left stopped.
set -u
source "$(dirname "$0")/lib.sh"

for fd_path in /proc/$$/fd/*; do  # only fds 0-2 may reach the programs
  fd=${fd_path##*/}
  if [ "$fd" -gt 2 ] && [ "$fd" -ne 255 ]; then eval "exec $fd>&-" 2>/dev/null; fi
done

T=$(mktemp -d /var/tmp/roam-ckpt-bad.XXXXXX)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  rm -rf "$T"
}
trap cleanup EXIT

gone() { ! [ -e "/proc/$1" ]; }
wait_gone() { wait_until 5 gone "$1" >/dev/null; }

# A small program with an open regular file, a deleted file and output.
cat >"$T/victim.py" <<'EOF'
import os, sys, time
keep = open(sys.argv[1], "r")
tmp = open(sys.argv[2], "w+")
tmp.write("travels in the image")
tmp.flush()
os.unlink(sys.argv[2])
print("READY", flush=True)
for i in range(600):
    time.sleep(0.05)
print("DONE", keep.read().strip(), flush=True)
EOF
echo "kept-file" >"$T/kept.txt"

start_victim() {  # start_victim LOG: prints the pid once READY
  (cd "$T" && exec /usr/bin/python3 "$T/victim.py" "$T/kept.txt" "$T/deleted.txt" >"$1" 2>&1 </dev/null) &
  local pid=$!
  PIDS+=("$pid")
  wait_until 10 grep -q READY "$1" >/dev/null
  echo "$pid"
}

one_line() {  # one_line FILE: exactly one line of error output
  [ "$(wc -l <"$1")" -eq 1 ]
}

untouched() {  # untouched PID WHAT: the process sleeps on, with no tracer left
  local state tracer
  state=$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null)
  tracer=$(awk '/^TracerPid:/ {print $2}' "/proc/$1/status" 2>/dev/null)
  check "$2 still runs, untraced (state $state, tracer $tracer)" test "$state" = S -a "$tracer" = 0
}

# ---- a good image, then damaged copies of it --------------------------------------
P=$(start_victim "$T/v1.log")
"$ROAM" checkpoint "$P" -D "$T/good" 2>"$T/ck.err"
check "checkpoint of a live python3 succeeds" test $? -eq 0
wait_gone "$P"

damage() {  # damage NAME CMD: copies the good image to $T/NAME and runs CMD in it
  rm -rf "$T/$1"
  cp -a "$T/good" "$T/$1"
  (cd "$T/$1" && eval "$2")
}

expect_refused() {  # expect_refused NAME PATTERN
  local name=$1 pattern=$2
  "$ROAM" restore -D "$T/$name" >"$T/$name.out" 2>"$T/$name.err"
  local rc=$?
  if [ "$rc" -ne 0 ] && one_line "$T/$name.err" && grep -qE "$pattern" "$T/$name.err" && gone "$P"; then
    pass "$name image refused with one line, nothing started: $(cat "$T/$name.err")"
  else
    fail "$name image: exit $rc, stderr: $(cat "$T/$name.err"), pid $P $(gone "$P" && echo free || echo TAKEN)"
  fi
}

pages=$(cd "$T/good" && ls pages-*.img | head -1)
core=$(cd "$T/good" && ls core-*.img | head -1)
damage truncated_pages "truncate -s -4096 $pages"
expect_refused truncated_pages "bytes|truncated"
damage flipped_pages "/usr/bin/python3 -c 'import sys; f=open(\"$pages\",\"r+b\"); f.seek(8192); b=f.read(1); f.seek(8192); f.write(bytes([b[0]^1]))'"
expect_refused flipped_pages "checksum"
damage flipped_core "/usr/bin/python3 -c 'import os; f=open(\"$core\",\"r+b\"); n=os.path.getsize(\"$core\"); f.seek(n//2); b=f.read(1); f.seek(n//2); f.write(bytes([b[0]^0x40]))'"
expect_refused flipped_core "checksum|corrupt"
damage wrong_magic "printf 'XOAM' | dd of=files.img conv=notrunc status=none"
expect_refused wrong_magic "not a roam image"
damage newer_version "printf '\\x63' | dd of=inventory.img bs=1 seek=8 conv=notrunc status=none"
expect_refused newer_version "newer"
damage incomplete "rm inventory.img"
expect_refused incomplete "inventory|incomplete"
damage missing_core "rm $core"
expect_refused missing_core "$core"

# ---- an ordinary user ----------------------------------------------------------------
AS_NOBODY=(setpriv --reuid 65534 --regid 65534 --clear-groups)
"${AS_NOBODY[@]}" "$ROAM" restore -D "$T/good" >"$T/nobody_rs.out" 2>"$T/nobody_rs.err"
rc=$?
if [ "$rc" -ne 0 ] && one_line "$T/nobody_rs.err" && grep -q "needs root" "$T/nobody_rs.err" && gone "$P"; then
  pass "an ordinary user's restore is refused with one line, nothing started: $(cat "$T/nobody_rs.err")"
else
  fail "an ordinary user's restore: exit $rc, stderr: $(cat "$T/nobody_rs.err"), pid $P $(gone "$P" && echo free || echo TAKEN)"
fi
"${AS_NOBODY[@]}" sleep 600 </dev/null >/dev/null 2>&1 &
N=$!
PIDS+=("$N")
wait_until 5 test "$(readlink "/proc/$N/exe" 2>/dev/null)" = /usr/bin/sleep >/dev/null
(cd / && "${AS_NOBODY[@]}" "$ROAM" checkpoint "$N" -D /tmp/roam-nobody-img.$$ >"$T/nobody_ck.out" 2>"$T/nobody_ck.err")
rc=$?
if [ "$rc" -ne 0 ] && one_line "$T/nobody_ck.err" && grep -q "needs root" "$T/nobody_ck.err"; then
  pass "an ordinary user's checkpoint of its own process is refused with one line: $(cat "$T/nobody_ck.err")"
else
  fail "an ordinary user's checkpoint: exit $rc, stderr: $(cat "$T/nobody_ck.err")"
fi
untouched "$N" "its process"
check "and no image directory was made" test ! -e /tmp/roam-nobody-img.$$
kill -9 "$N" 2>/dev/null

# ---- the good image is still good ----------------------------------------------------
"$ROAM" restore -D "$T/good" --detach 2>"$T/good.err"
check "the undamaged image restores" test $? -eq 0
check "restored with the same pid" test -e "/proc/$P"

# ---- pid taken ------------------------------------------------------------------------
"$ROAM" restore -D "$T/good" 2>"$T/taken.err"
rc=$?
if [ "$rc" -ne 0 ] && one_line "$T/taken.err" && grep -q "pid $P is taken by" "$T/taken.err"; then
  pass "a taken pid is named: $(cat "$T/taken.err")"
else
  fail "taken pid: exit $rc, $(cat "$T/taken.err")"
fi
kill -9 "$P"
wait_gone "$P"

# ---- a restore failing halfway leaves nothing -------------------------------------------
mv "$T/kept.txt" "$T/kept.moved"
"$ROAM" restore -D "$T/good" 2>"$T/half.err"
rc=$?
if [ "$rc" -ne 0 ] && one_line "$T/half.err" && grep -q "kept.txt" "$T/half.err"; then
  pass "a missing file stops the restore with one line: $(cat "$T/half.err")"
else
  fail "missing file: exit $rc, $(cat "$T/half.err")"
fi
check "nothing left running after the failed restore" gone "$P"
check "no recreated deleted file left behind" test ! -e "$T/deleted.txt"
mv "$T/kept.moved" "$T/kept.txt"
"$ROAM" restore -D "$T/good" >"$T/final.out" 2>"$T/final.err"
rc=$?
check "with the file back, the restore runs the program to its end (exit $rc)" test "$rc" -eq 0
check "and it read the file it had open" grep -q "DONE kept-file" "$T/v1.log"

# ---- refused checkpoints leave the process untouched --------------------------------------
/usr/bin/python3 -c '
import socket, time, sys
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW)  # a kind of socket roam does not carry
print("READY", flush=True)
time.sleep(60)' >"$T/sock.log" 2>&1 </dev/null &
S=$!
PIDS+=("$S")
wait_until 10 grep -q READY "$T/sock.log" >/dev/null
"$ROAM" checkpoint "$S" -D "$T/sock" 2>"$T/sock.err"
rc=$?
if [ "$rc" -ne 0 ] && one_line "$T/sock.err" && grep -q "pid $S fd [0-9]*: sockets of family 16,.*are not supported" "$T/sock.err"; then
  pass "a socket is refused, naming pid and fd: $(cat "$T/sock.err")"
else
  fail "socket refusal: exit $rc, $(cat "$T/sock.err")"
fi
untouched "$S" "the refused process"
check "no image files are left, nor the directory it made" test ! -e "$T/sock"

finish
