#!/usr/bin/env bash
# Real, unmodified programs survive `roam checkpoint` + `roam restore` on this
# host (no cluster): bc -l computing pi, /usr/bin/python3 running a loop that
# prints as it goes (stdout opened O_APPEND), gzip -9, sha256sum over a large
# file, and sort --parallel=1 (single-threaded, with its multi-GiB sparse
# buffer); and multi-threaded ones: xz -T2, sort --parallel=2, a Python
# program whose threads meet at a barrier every round, a Python
# multiprocessing.Pool (a tree of 3, the parent with threads), a
# multiprocessing.Manager (a server on a UNIX socket, and the connections
# it accepted from two workers and the parent), and povray rendering
# a small scene with 2 worker threads (each dumped while it has 2 threads or
# more); sort under valgrind (no vDSO, its own fds at the top of the fd
# limit); and a System V user, sysv_workers (tests/data/programs): a parent
# and 3 children sharing a segment and a semaphore set, in an IPC namespace
# of its own and restored into a new one, where its objects are made again.
# Each runs once undisturbed (the reference), then again: dumped once it
# has used 40% of the reference's CPU time (CPU time, not wall time: these
# shared machines' wall time varies 2x from run to run), which kills it;
# restored with `roam restore` (not detached), which must exit 0 with the
# program; and its output must be byte-identical to the reference. Then
# one python3 run is dumped twice with --leave-running, killed, and
# restored from the second image. Last, a server waiting for clients
# (python3 -m http.server) is dumped 3 times with --leave-running while a
# client fetches from it without pause, then between two requests, and
# restored: it answers on its port again.
# Inputs and outputs are regular files (the tree has no pipe to the outside);
# big files live under /var/tmp. Timings are printed, never asserted.
set -u
source "$(dirname "$0")/lib.sh"

# Only fds 0-2 may reach the programs: whatever this script inherited beyond
# them (a harness's pipe, say) would otherwise be part of every dumped tree.
# Bash reads this script through fd 255; it is close-on-exec already.
for fd_path in /proc/$$/fd/*; do
  fd=${fd_path##*/}
  if [ "$fd" -gt 2 ] && [ "$fd" -ne 255 ]; then eval "exec $fd>&-" 2>/dev/null; fi
done

T=$(mktemp -d /var/tmp/roam-ckpt-real.XXXXXX)
STARTED=()  # "PID NAME" of every program started; a restored one keeps its PID
cleanup() {
  local entry pid name
  for entry in "${STARTED[@]}"; do
    read -r pid name <<<"$entry"
    # Only ever our program: the PID may have been reused since.
    if grep -qs "$name" "/proc/$pid/cmdline"; then kill -9 "$pid" 2>/dev/null; fi
  done
  [ -n "${IPC_HOLDER:-}" ] && kill -9 "$IPC_HOLDER" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ ! -x "$ROAM" ]; then
  fail "roam binary at $ROAM (build first)"
  finish; exit 1
fi

secs() { awk -v ms="$1" 'BEGIN { printf "%.2f s", ms / 1000 }'; }
size_of() { stat -c %s "$1" 2>/dev/null || echo 0; }

# wait_gone PID SECONDS: true once /proc/PID is gone (an orphan's zombie
# holds its PID for up to ~1 s until PID 1 reaps it).
wait_gone() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    [ -e "/proc/$1" ] || return 0
    sleep 0.1
  done
  return 1
}

# ---- inputs -----------------------------------------------------------------

# Each program is sized to ~3 s on an idle machine (up to twice that when
# the host is busy), so the whole script stays near a minute.
# pi to 2700 digits; bc prints only at the end.
echo "scale=2700; 4*a(1)" >"$T/pi.bc"

# Integer and floating-point state, a growing dict, a flushed line per 50,000
# iterations.
cat >"$T/loop.py" <<'EOF'
x = 1
f = 0.5
seen = {}
for i in range(1, 9_000_001):
    x = (x * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
    f = f * 0.9999 + (x >> 48) / 65536.0
    seen[x % 4093] = seen.get(x % 4093, 0) + 1
    if i % 50000 == 0:
        print(i, x, repr(f), len(seen), max(seen.values()), flush=True)
print("done", x, repr(f))
EOF

# 112 MiB of text from a seeded generator: lines of a number and words drawn
# from a 5,000-word vocabulary (gzip -9 halves it).
cat >"$T/gen.py" <<'EOF'
import random, sys
rnd = random.Random(20261124)
words = ["".join(rnd.choice("abcdefghijklmnopqrstuvwxyz")
                 for _ in range(rnd.randint(2, 9))) for _ in range(5000)]
target = int(sys.argv[1]) << 20
out = sys.stdout.buffer
n = 0
while n < target:
    lines = ["%d %s\n" % (rnd.getrandbits(20), " ".join(rnd.choices(words, k=rnd.randint(4, 14))))
             for _ in range(2000)]
    b = "".join(lines).encode()
    out.write(b)
    n += len(b)
EOF
t0=$(now_ms)
if ! /usr/bin/python3 "$T/gen.py" 112 >"$T/text.txt"; then
  fail "generate the 112 MiB input"
  finish; exit 1
fi
echo "TIME input: $(( $(size_of "$T/text.txt") >> 20 )) MiB generated in $(secs $(( $(now_ms) - t0 )))"
head -c $((40 << 20)) "$T/text.txt" >"$T/text40.txt"
# 100,000 numbers in a scrambled order, for sort under valgrind (~4 s).
awk 'BEGIN { for (i = 0; i < 100000; i++) print (i * 7919) % 100003 }' >"$T/numbers.txt"


# multiprocessing.Pool: 2 worker processes fed through pipes by 3 threads
# of the parent, with a POSIX semaphore (a deleted file in /dev/shm,
# mapped shared by all three).
cat >"$T/pool.py" <<'EOF'
import hashlib, multiprocessing as mp, time
def work(i):
    h = str(i).encode()
    for _ in range(80000):
        h = hashlib.sha256(h).digest()
    time.sleep(0.01)
    return h.hex()[:8]
if __name__ == "__main__":
    with mp.Pool(2) as pool:
        for r in pool.imap(work, range(80)):
            print(r, flush=True)
    print("done")
EOF

# A small scene with reflection and refraction, rendered by 2 threads.
cat >"$T/scene.pov" <<'EOF'
#version 3.7;
global_settings { assumed_gamma 1.0 }
camera { location <0, 2, -6> look_at <0, 0.5, 0> }
light_source { <4, 6, -5> color rgb 1 }
light_source { <-5, 3, -2> color rgb 0.4 }
plane { y, 0 pigment { checker color rgb 1 color rgb 0.2 } finish { reflection 0.3 } }
#declare I = 0;
#while (I < 12)
  sphere { <sin(I * 0.52) * 2, 0.5 + mod(I, 3) * 0.4, cos(I * 0.52) * 2>, 0.45
    texture { pigment { color rgb <mod(I, 2), mod(I, 3) / 2, 0.5> } finish { reflection 0.4 specular 0.6 } } }
  #declare I = I + 1;
#end
sphere { <0, 1, 0>, 0.8 pigment { color rgbf <1, 1, 1, 0.9> } interior { ior 1.5 } }
EOF

# ---- the programs -------------------------------------------------------------
# run_NAME OUT: becomes the program (exec), writing OUT and OUT.err. Started
# with & it is the background job itself, so $! is the program's PID.
SHA_ARGS=()
for _ in 1 2 3 4 5 6 7 8 9 10; do SHA_ARGS+=("$T/text.txt"); done

run_bc() { exec bc -l <"$T/pi.bc" >"$1" 2>"$1.err"; }
run_python() { exec /usr/bin/python3 "$T/loop.py" </dev/null >>"$1" 2>"$1.err"; }
run_gzip() { exec gzip -9 -c <"$T/text.txt" >"$1" 2>"$1.err"; }
run_sha256sum() { exec sha256sum "${SHA_ARGS[@]}" </dev/null >"$1" 2>"$1.err"; }
run_sort() { exec sort --parallel=1 -k2 -k1,1n "$T/text.txt" </dev/null >"$1" 2>"$1.err"; }
run_python_twice() { exec /usr/bin/python3 "$T/loop.py" </dev/null >"$1" 2>"$1.err"; }
run_xz() { exec xz -T2 -1 -c <"$T/text40.txt" >"$1" 2>"$1.err"; }
run_sort_parallel() { exec sort --parallel=2 -k2 -k1,1n "$T/text.txt" </dev/null >"$1" 2>"$1.err"; }
# Threads at a barrier (tests/data/programs/threads_barrier.py).
PROGRAMS=$(cd "$(dirname "$0")/../data/programs" && pwd)
THREADS_PY=$PROGRAMS/threads_barrier.py
run_python_threads() { exec /usr/bin/python3 "$THREADS_PY" 60 30000 </dev/null >"$1" 2>"$1.err"; }
run_python_pool() { exec /usr/bin/python3 "$T/pool.py" </dev/null >"$1" 2>"$1.err"; }
# multiprocessing.Manager (tests/data/programs/manager_workers.py).
run_python_manager() { exec /usr/bin/python3 "$PROGRAMS/manager_workers.py" 40 120000 </dev/null >"$1" 2>"$1.err"; }
run_sysv_workers() { exec "${IN_IPC[@]}" "$T/sysv_workers" 3 40 </dev/null >"$1" 2>"$1.err"; }
# sysv_workers runs in an IPC namespace of its own, held by a sleep
# (IPC_HOLDER) until the next one; IN_IPC enters it.
IPC_HOLDER=""
IN_IPC=()
new_ipc_namespace() {
  local i
  [ -n "$IPC_HOLDER" ] && kill -9 "$IPC_HOLDER" 2>/dev/null
  unshare --ipc sleep 100000 </dev/null >/dev/null 2>&1 &
  IPC_HOLDER=$!
  disown "$IPC_HOLDER"
  for ((i = 0; i < 100; i++)); do
    [ "$(readlink "/proc/$IPC_HOLDER/ns/ipc" 2>/dev/null)" != "$(readlink /proc/self/ns/ipc)" ] && break
    sleep 0.02
  done
  IN_IPC=(nsenter "--ipc=/proc/$IPC_HOLDER/ns/ipc")
}
# valgrind gives its client no vDSO and keeps its own fds at the top of the
# fd limit (19988 and up under 20000): the engine works through the
# program's own code, and the restore makes its fds in a gap below them.
run_valgrind() { exec valgrind -q --error-exitcode=3 sort --parallel=1 -n "$T/numbers.txt" </dev/null >"$1" 2>"$1.err"; }
run_povray() { exec povray -D "+I$T/scene.pov" +O- +FP +W1000 +H750 +A0.1 +AM2 +R3 -J +WT2 </dev/null >"$1" 2>"$1.err"; }
declare -A COMM=([bc]=bc [python]=python3 [gzip]=gzip [sha256sum]=sha256sum
                 [sort]=sort [python_twice]=python3 [xz]=xz [sort_parallel]=sort
                 [python_threads]=python3 [python_pool]=python3 [povray]=povray
                 [sysv_workers]=sysv_workers [python_manager]=python3 [valgrind]=valgrind)
# The programs dumped while they run threads (the others have one).
declare -A THREADED=([xz]=1 [sort_parallel]=1 [python_threads]=1 [python_pool]=1 [povray]=1)

# same_output NAME A B: the outputs are the same (povray's header names
# the hour it rendered at: that line is left out).
same_output() {
  if [ "$1" = povray ]; then
    cmp -s <(sed '1,8{/^# Render Date: /d}' "$2") <(sed '1,8{/^# Render Date: /d}' "$3")
  else
    cmp -s "$2" "$3"
  fi
}

# threads_of PID: how many threads it has now.
threads_of() { awk '/^Threads:/ {print $2}' "/proc/$1/status" 2>/dev/null; }

# children_cpu_ms: sets CHILD_CPU_MS, the user + system time of this shell's
# reaped children, from the `times` builtin. Call it directly, never in $( ):
# a subshell's children are its own.
children_cpu_ms() {
  times >"$T/times"
  CHILD_CPU_MS=$(awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/)
    printf "%d", (u[1] * 60 + u[2] + s[1] * 60 + s[2]) * 1000 }' "$T/times")
}

declare -A REF_MS REF_CPU_MS
# reference NAME: one undisturbed run into $T/NAME.ref; notes its wall and
# CPU (user + system) time.
reference() {
  local name=$1 ref=$T/$1.ref
  rm -f "$ref"
  local t0 rc cpu0
  children_cpu_ms
  cpu0=$CHILD_CPU_MS
  t0=$(now_ms)
  ( "run_$name" "$ref" )
  rc=$?
  REF_MS[$name]=$(( $(now_ms) - t0 ))
  children_cpu_ms
  REF_CPU_MS[$name]=$(( CHILD_CPU_MS - cpu0 ))
  if [ "$rc" -eq 0 ] && [ -s "$ref" ]; then
    pass "$name: reference run exits 0 with output ($(secs "${REF_MS[$name]}"), CPU $(secs "${REF_CPU_MS[$name]}"), $(size_of "$ref") bytes)"
  else
    fail "$name: reference run (exit $rc; $(head -c 200 "$ref.err" 2>/dev/null))"
  fi
}

# start NAME OUT: starts the program in the background; sets PID.
start() {
  "run_$1" "$2" &
  PID=$!
  disown "$PID"  # this shell still reaps it, without a "Killed" line
  STARTED+=("$PID ${COMM[$1]}")
}

# cpu_ms PID: user + system time so far of PID and its descendants
# (fields 14 and 15 of stat, after the parenthesised command name; a
# Pool's work is in its children). Empty once PID is gone.
CLK_TCK=$(getconf CLK_TCK)
# tree_pids PID: PID and its descendants, one per line.
tree_pids() {
  local pids=("$1") i=0 kid
  while [ $i -lt ${#pids[@]} ]; do
    for kid in $(cat /proc/"${pids[$i]}"/task/*/children 2>/dev/null); do pids+=("$kid"); done
    i=$((i + 1))
  done
  printf '%s\n' "${pids[@]}"
}
cpu_ms() {
  [ -e "/proc/$1/stat" ] || return 0
  local p
  for p in $(tree_pids "$1"); do sed 's/.*) //' "/proc/$p/stat" 2>/dev/null; done |
    awk -v hz="$CLK_TCK" '{t += $12 + $13} END {printf "%d", t * 1000 / hz}'
}

# wait_cpu PID MS: until PID has used MS of CPU time; false if it ended
# first (or after a minute).
wait_cpu() {
  local i c
  for ((i = 0; i < 1200; i++)); do
    c=$(cpu_ms "$1")
    [ -n "$c" ] || return 1
    [ "$c" -ge "$2" ] && return 0
    sleep 0.05
  done
  return 1
}

# wait_output PID FILE BYTES: until FILE holds BYTES; false if PID ended
# first (or after a minute). A program that flushes as it goes measures its
# progress this way better than by CPU time, which varies with the load of
# the machine from one run to the next.
wait_output() {
  local i
  for ((i = 0; i < 1200; i++)); do
    [ "$(size_of "$2")" -ge "$3" ] && return 0
    [ -e "/proc/$1/stat" ] || return 1
    sleep 0.05
  done
  return 1
}

# dump NAME PID IMG [--leave-running]: `roam checkpoint`, timed into DUMP_MS.
dump() {
  local name=$1 pid=$2 img=$3; shift 3
  local t0 rc
  t0=$(now_ms)
  timeout -k 5 60 "$ROAM" checkpoint "$pid" -D "$img" "$@" </dev/null >"$img.log" 2>&1
  rc=$?
  DUMP_MS=$(( $(now_ms) - t0 ))
  if [ "$rc" -eq 0 ]; then
    pass "$name: roam checkpoint $* exits 0"
  else
    fail "$name: roam checkpoint $* (exit $rc: $(head -c 300 "$img.log" | tr '\n' ' '))"
  fi
  return "$rc"
}

# restore NAME IMG OUT: `roam restore` in the foreground, which must exit 0
# (the program's status) leaving OUT identical to the reference.
restore() {
  local name=$1 img=$2 out=$3
  local t0 rc
  t0=$(now_ms)
  [ "$name" = sysv_workers ] && new_ipc_namespace
  timeout -k 5 120 "${IN_IPC[@]}" "$ROAM" restore -D "$img" </dev/null >"$img.restore.log" 2>&1
  rc=$?
  RESTORE_MS=$(( $(now_ms) - t0 ))
  if [ "$rc" -eq 0 ]; then
    pass "$name: roam restore exits 0, the program's own status"
  else
    fail "$name: roam restore (exit $rc: $(head -c 300 "$img.restore.log" | tr '\n' ' '))"
  fi
  if same_output "$name" "$out" "$T/$name.ref"; then
    pass "$name: output after restore is byte-identical to the reference"
  else
    fail "$name: output after restore differs from the reference ($(size_of "$out") vs $(size_of "$T/$name.ref") bytes; $(cmp "$out" "$T/$name.ref" 2>&1 | head -1))"
  fi
}

# gone_mid_run NAME PID OUT: the dumped program is gone and had not finished.
gone_mid_run() {
  local name=$1 pid=$2 out=$3
  if wait_gone "$pid" 5; then
    pass "$name: process gone after the checkpoint"
  else
    fail "$name: pid $pid still present 5 s after the checkpoint"
    kill -9 "$pid" 2>/dev/null; wait_gone "$pid" 5
  fi
  if [ "$(size_of "$out")" -lt "$(size_of "$T/$name.ref")" ]; then
    pass "$name: killed mid-run (output $(size_of "$out") of $(size_of "$T/$name.ref") bytes)"
  else
    fail "$name: output already complete at the checkpoint: it was not dumped mid-run"
  fi
}

# checkpoint_restore NAME: the reference, then a run dumped at ~40% of the
# reference time and restored.
checkpoint_restore() {
  local name=$1 out=$T/$1.out img=$T/$1.img
  [ "$name" = sysv_workers ] && new_ipc_namespace
  reference "$name"
  rm -rf "$out" "$img"
  [ "$name" = sysv_workers ] && new_ipc_namespace
  start "$name" "$out"
  local pid=$PID
  if ! wait_cpu "$pid" $(( REF_CPU_MS[$name] * 4 / 10 )); then
    fail "$name: finished before using 40% of its reference CPU time"
    return
  fi
  local at_cpu
  at_cpu=$(cpu_ms "$pid")
  local threads i
  threads=$(threads_of "$pid")
  if [ -n "${THREADED[$name]:-}" ]; then
    # Past 40% of its CPU time, at a moment it runs threads (sort makes
    # its own only while it sorts): up to 10 s.
    for ((i = 0; i < 1000 && ${threads:-0} < 2; i++)); do
      sleep 0.01
      threads=$(threads_of "$pid")
    done
    if [ "${threads:-0}" -ge 2 ]; then
      pass "$name: $threads threads when dumped"
    else
      fail "$name: ${threads:-no} thread(s) when it was to be dumped"
    fi
  elif [ "$threads" = 1 ]; then
    pass "$name: single-threaded when dumped"
  else
    fail "$name: $threads threads when dumped (it is the single-threaded case)"
  fi
  local tree p
  tree=$(tree_pids "$pid")
  if ! dump "$name" "$pid" "$img"; then
    kill -9 "$pid" 2>/dev/null; wait_gone "$pid" 5
    rm -rf "$img"
    return
  fi
  gone_mid_run "$name" "$pid" "$out"
  # The root's children (a Pool's workers) went to PID 1, which takes up
  # to ~1 s to reap them: their PIDs must be free for the restore.
  for p in $tree; do wait_gone "$p" 5 || fail "$name: pid $p of its tree still present 5 s after the checkpoint"; done
  local image
  image=$(du -sb "$img" | awk '{print $1}')
  restore "$name" "$img" "$out"
  kill -9 "$pid" 2>/dev/null  # in case the restore timed out
  echo "TIME $name: reference $(secs "${REF_MS[$name]}") (CPU $(secs "${REF_CPU_MS[$name]}"));" \
       "dumped at CPU $(secs "$at_cpu") in $(secs "$DUMP_MS"); image $(( image >> 10 )) KiB;" \
       "restore ran to exit in $(secs "$RESTORE_MS")" \
       "(the rest of the reference: ~$(secs $(( REF_MS[$name] * (REF_CPU_MS[$name] - at_cpu) / (REF_CPU_MS[$name] > 0 ? REF_CPU_MS[$name] : 1) ))))"
  rm -rf "$img"
}

# ---- checks -------------------------------------------------------------------

if gcc -O2 -o "$T/sysv_workers" "$PROGRAMS/sysv_workers.c" 2>"$T/gcc.err"; then
  SYSV=sysv_workers
else
  fail "compile sysv_workers.c: $(head -c 300 "$T/gcc.err")"
  SYSV=""
fi
for name in bc python gzip sha256sum sort xz sort_parallel python_threads python_pool python_manager povray valgrind $SYSV; do
  checkpoint_restore "$name"
done

# The same process dumped twice with --leave-running, killed after it has
# written past the second dump, then restored from the second image: it must
# rewrite the same bytes at the same offsets.
name=python_twice  # the same program as python, so the same reference
cp "$T/python.ref" "$T/$name.ref"
REF_MS[$name]=${REF_MS[python]} REF_CPU_MS[$name]=${REF_CPU_MS[python]}
out=$T/$name.out img1=$T/$name.img1 img2=$T/$name.img2
rm -rf "$out" "$img1" "$img2"
start "$name" "$out"
pid=$PID
# Its milestones are fractions of the reference's output (a line every
# 50,000 steps, flushed), not of its CPU time: the reference's CPU time,
# measured once under whatever else ran then, was once above this run's
# whole CPU time, and the process ended before the kill.
ref_size=$(size_of "$T/$name.ref")
if ! wait_output "$pid" "$out" $(( ref_size * 2 / 10 )); then
  fail "$name: finished (or stalled) before writing 20% of its output"
elif dump "$name" "$pid" "$img1" --leave-running; then
  check "$name: still running after the first --leave-running dump" kill -0 "$pid"
  d1=$DUMP_MS
  wait_output "$pid" "$out" $(( ref_size * 4 / 10 ))
  if dump "$name" "$pid" "$img2" --leave-running; then
    check "$name: still running after the second --leave-running dump" kill -0 "$pid"
    check "$name: the first image is still there" test -n "$(ls -A "$img1")"
    at_dump2=$(size_of "$out")
    wait_output "$pid" "$out" $(( ref_size * 6 / 10 ))
    kill -9 "$pid"
    gone_mid_run "$name" "$pid" "$out"
    image=$(du -sb "$img2" | awk '{print $1}')
    restore "$name" "$img2" "$out"
    kill -9 "$pid" 2>/dev/null
    echo "TIME $name: reference $(secs "${REF_MS[$name]}"); dumps with --leave-running took" \
         "$(secs "$d1") and $(secs "$DUMP_MS"); output at the second dump <= $at_dump2 bytes;" \
         "image $(( image >> 10 )) KiB; restore ran to exit in $(secs "$RESTORE_MS")"
  fi
fi
kill -9 "$pid" 2>/dev/null; wait_gone "$pid" 5

# A server waiting for clients: python3's http.server listening on
# 127.0.0.1, dumped between two requests and restored (in the background:
# it serves until killed). The same port must answer again with the same
# file: the listener came back with its address, backlog and options.
name=http_server
mkdir -p "$T/www"
head -c 300000 /dev/urandom >"$T/www/blob"
PORT=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fetch() {  # fetch OUT: GET /blob into OUT; false on any failure
  /usr/bin/python3 -c 'import sys, urllib.request
sys.stdout.buffer.write(urllib.request.urlopen("http://127.0.0.1:%s/blob" % sys.argv[1], timeout=10).read())' \
    "$PORT" >"$1" 2>/dev/null
}
fetch_within() {  # fetch_within SECONDS OUT
  local i
  for ((i = 0; i < $1 * 10; i++)); do
    fetch "$2" && return 0
    sleep 0.1
  done
  return 1
}
(cd "$T/www" && exec /usr/bin/python3 -m http.server --bind 127.0.0.1 "$PORT" </dev/null >"$T/http.log" 2>&1) &
pid=$!
disown "$pid"
STARTED+=("$pid python3")
if fetch_within 10 "$T/get1" && cmp -s "$T/get1" "$T/www/blob"; then
  pass "$name: serves the file on port $PORT before the checkpoint"
else
  fail "$name: no answer on port $PORT before the checkpoint ($(tail -c 300 "$T/http.log"))"
fi
# Under load: a client fetching without pause. A server under load always
# has a client waiting in its accept queue or its handshake under way,
# which refused every dump (kBusy: 4 of 5 refused by hand). New clients
# are held off (their SYNs dropped, sent again) while the server takes
# those waiting, then it is dumped: each of 3 checkpoints succeeds, and
# every fetch is answered in full.
/usr/bin/python3 - "$PORT" "$T/www/blob" >"$T/load.out" 2>&1 <<'PY' &
import sys, time, urllib.request
want = open(sys.argv[2], "rb").read()
ok = bad = 0
end = time.time() + 8
while time.time() < end:
    try:
        got = urllib.request.urlopen("http://127.0.0.1:%s/blob" % sys.argv[1], timeout=10).read()
        ok, bad = (ok + 1, bad) if got == want else (ok, bad + 1)
    except Exception as e:
        bad += 1
print(ok, bad)
PY
loader=$!
sleep 1
for k in 1 2 3; do
  dump "$name under load ($k of 3, --leave-running)" "$pid" "$T/http-load$k.img" --leave-running
  sleep 0.5
done
wait "$loader"
read -r load_ok load_bad <"$T/load.out"
check "$name: every fetch during the 3 checkpoints answered in full ($load_ok answered, ${load_bad:-?} failed: $(head -c 200 "$T/load.out"))" \
  sh -c "[ '${load_bad:-x}' = 0 ] && [ '${load_ok:-0}' -gt 20 ]"
if dump "$name" "$pid" "$T/http.img"; then
  check "$name: process gone after the checkpoint" wait_gone "$pid" 5
  check "$name: port $PORT closed while it is checkpointed" sh -c "! /usr/bin/python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", $PORT), 1)' 2>/dev/null"
  "$ROAM" restore -D "$T/http.img" </dev/null >"$T/http.restore.log" 2>&1 &
  restorer=$!
  if fetch_within 10 "$T/get2" && cmp -s "$T/get2" "$T/www/blob"; then
    pass "$name: after the restore the same port serves the same file again"
  else
    fail "$name: no answer after the restore ($(head -c 300 "$T/http.restore.log"))"
  fi
  kill -TERM "$pid" 2>/dev/null
  wait "$restorer" 2>/dev/null
fi
kill -9 "$pid" 2>/dev/null; wait_gone "$pid" 5

finish
