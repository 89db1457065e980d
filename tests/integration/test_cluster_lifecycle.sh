#!/usr/bin/env bash
# The life of a `roam cluster`: up with per-node CPU quotas and memory limits,
# each node a separate host (own addresses, PID namespace, private /tmp, the
# shared directory at the same path, multicast between nodes), status and
# exec behave as documented, down leaves nothing behind, and a cluster whose
# processes were killed from the host (a crash) can be brought up again.
#
# Needs root. Binaries come from $ROAM_BIN (default /work/main/build/bin);
# roamd is the one beside roam unless ROAM_ROAMD says otherwise.
# Prints `PASS name` / `FAIL name` per check, then `N passed, M failed`.
set -u

ROAM_BIN=${ROAM_BIN:-/work/main/build/bin}
ROAM="$ROAM_BIN/roam"
C=lifecycle
WORK=$(mktemp -d /var/tmp/roam-lifecycle.XXXXXX)   # not /tmp: nodes have their own
SHARED="$WORK/shared"
# The system python starts much faster than a pyenv shim, if both exist.
PY=$(command -v /usr/bin/python3 || command -v python3)
passed=0
failed=0

cleanup() {
  "$ROAM" cluster down --name "$C" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT

check() {  # check NAME CONDITION-EXIT-STATUS [DETAIL]
  if [ "$2" -eq 0 ]; then
    echo "PASS $1"
    passed=$((passed + 1))
  else
    echo "FAIL $1${3:+: $3}"
    failed=$((failed + 1))
  fi
}

in_node() {  # in_node NODE CMD...
  local node=$1
  shift
  "$ROAM" cluster exec --name "$C" "$node" -- "$@"
}

# JSON of `cluster status`, and fields of it (python: jq is not a dependency).
status_json() { "$ROAM" cluster status --name "$C" --json; }
field() {  # field PYTHON-EXPRESSION-ON-d  < json
  "$PY" -c "import json,sys; d=json.load(sys.stdin); print($1)"
}

# Everything of cluster $C the host can see; empty when it is all gone.
leftovers() {  # leftovers BRIDGE CPU_CGROUP MEM_CGROUP
  local bridge=$1 veth_prefix="rve-${1#rbr-}-" cpu=$2 mem=$3
  ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E "^(${bridge}|${veth_prefix})" | sed 's/^/link /'
  [ -d "$cpu" ] && echo "cgroup $cpu"
  [ -n "$mem" ] && [ -d "$mem" ] && echo "cgroup $mem"
  ps -eo pid=,args= | grep -E "cluster node-init --name $C( |$)" | grep -v grep | sed 's/^/process /'
  [ -e "/var/lib/roam/clusters/$C/state.json" ] && echo "state.json"
  return 0
}

# ---- up ----------------------------------------------------------------------
"$ROAM" cluster down --name "$C" >/dev/null 2>&1
out=$("$ROAM" cluster up --name "$C" --nodes 3 --cpu-quota 1,0.5,0.25 --mem-limit 512M,256M,128M \
        --shared "$SHARED" 2>&1)
check up_starts_three_nodes $? "$out"

js=$(status_json)
states=$(echo "$js" | field '" ".join(n["state"] for n in d["nodes"])')
addrs=$(echo "$js" | field '" ".join(n["address"] for n in d["nodes"])')
roamds=$(echo "$js" | field '" ".join(str(n["roamd_pid"]) for n in d["nodes"])')
naddr=$(echo "$addrs" | tr ' ' '\n' | sort -u | grep -c .)
[ "$states" = "running running running" ] && [ "$naddr" -eq 3 ] && [[ "$roamds" != *" 0"* && "$roamds" != "0 "* ]]
check status_shows_three_running_nodes_with_distinct_addresses $? "states='$states' addresses='$addrs' roamd='$roamds'"
read -r A1 A2 A3 <<<"$addrs"
BRIDGE=$(echo "$js" | field 'd["bridge"]')
CPU_CG=$("$PY" -c "import json; print(json.load(open('/var/lib/roam/clusters/$C/state.json'))['cgroup_cpu'])")
MEM_CG=$("$PY" -c "import json; print(json.load(open('/var/lib/roam/clusters/$C/state.json'))['cgroup_memory'])")

out=$("$ROAM" cluster up --name "$C" --nodes 2 2>&1)
rc=$?
[ $rc -ne 0 ] && [ "$(echo "$out" | wc -l)" -eq 1 ]
check up_refuses_a_running_cluster_in_one_line $? "rc=$rc out='$out'"

# ---- quotas and limits ---------------------------------------------------------
# cgroup v1 (cpu.cfs_quota_us, memory.limit_in_bytes) or v2 (cpu.max, memory.max).
quota_of() { if [ -f "$1/cpu.max" ]; then awk '{print $1}' "$1/cpu.max"; else cat "$1/cpu.cfs_quota_us"; fi; }
limit_of() { if [ -f "$1/memory.max" ]; then cat "$1/memory.max"; else cat "$1/memory.limit_in_bytes"; fi; }
cgroup_of() {  # cgroup_of CONTROLLER < /proc/PID/cgroup: the v1 path, else the v2 one
  awk -F: -v c="$1" '$2 ~ "(^|,)" c "(,|$)" {v1 = $3} $1 == "0" {v2 = $3} END {print (v1 != "" ? v1 : v2)}'
}
got=""
for n in n1 n2 n3; do
  self=$(in_node "$n" cat /proc/self/cgroup)
  cpu_path=$(echo "$self" | cgroup_of cpu)
  mem_path=$(echo "$self" | cgroup_of memory)
  got="$got ${n}:$(quota_of "$CPU_CG/$n" 2>/dev/null):$(limit_of "$MEM_CG/$n" 2>/dev/null):${cpu_path##*/}:${mem_path##*/}"
done
[ "$got" = " n1:100000:536870912:n1:n1 n2:50000:268435456:n2:n2 n3:25000:134217728:n3:n3" ]
check exec_runs_in_node_cgroups_with_quotas_and_limits $? "got '$got'"

# ---- network -------------------------------------------------------------------
# Each receiver touches a file in $WORK (visible from the nodes: not under /tmp)
# once it listens, and the sender waits for it: a loaded machine may take
# seconds to start python.
wait_for() { for _ in $(seq 100); do [ -e "$1" ] && return 0; sleep 0.1; done; return 1; }

in_node n3 "$PY" -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('$A3', 7999)); s.settimeout(10)
open('$WORK/udp.ready', 'w').close()
data, peer = s.recvfrom(100); s.sendto(b'pong ' + data, peer)" &
srv=$!
wait_for "$WORK/udp.ready"
reply=$(in_node n1 "$PY" -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
for _ in range(5):
    s.sendto(b'ping', ('$A3', 7999))
    try:
        print(s.recvfrom(100)[0].decode()); break
    except socket.timeout: pass" 2>&1)
wait $srv
[ "$reply" = "pong ping" ]
check n1_reaches_n3_by_udp $? "reply='$reply'"

in_node n3 "$PY" -c "
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('', 7948))
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, struct.pack('4s4s', socket.inet_aton('239.192.77.77'), socket.inet_aton('$A3')))
s.settimeout(10)
open('$WORK/mcast.ready', 'w').close()
print(s.recvfrom(100)[0].decode())" >"$WORK/mcast.out" 2>&1 &
rcv=$!
wait_for "$WORK/mcast.ready"
in_node n1 "$PY" -c "
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(30):
    s.sendto(b'hello from n1', ('239.192.77.77', 7948)); time.sleep(0.1)" >/dev/null 2>&1 &
snd=$!
wait $rcv
kill $snd 2>/dev/null; wait $snd 2>/dev/null
[ "$(cat "$WORK/mcast.out")" = "hello from n1" ]
check multicast_from_n1_reaches_n3 $? "$(head -c 200 "$WORK/mcast.out")"

# ---- isolation -----------------------------------------------------------------
pids=$(in_node n1 ls /proc | grep -c '^[0-9]')
init=$(in_node n1 cat /proc/1/cmdline | tr '\0' ' ')
[ "$pids" -lt 10 ] && [[ "$init" == *"cluster node-init --name $C --node n1"* ]]
check node_sees_only_its_own_processes $? "pids=$pids init='$init'"

[ "$(in_node n2 hostname)" = n2 ]
check node_has_its_own_hostname $?

token=$RANDOM$RANDOM
in_node n1 sh -c "echo $token > '$SHARED/from-n1'"
[ "$(in_node n2 cat "$SHARED/from-n1" 2>&1)" = "$token" ]
check shared_dir_written_on_n1_is_read_on_n2 $?

in_node n1 sh -c "echo $token > /tmp/private-$token"
[ "$(in_node n1 cat /tmp/private-$token)" = "$token" ] && [ ! -e /tmp/private-$token ] &&
  ! in_node n2 test -e /tmp/private-$token
check tmp_of_a_node_is_private $?

# ---- exec ----------------------------------------------------------------------
in_node n2 sh -c 'exit 7'
s1=$?
in_node n2 no-such-command-roam 2>/dev/null
s2=$?
"$ROAM" cluster exec --name "$C" n9 -- true 2>/dev/null
s3=$?
[ $s1 -eq 7 ] && [ $s2 -eq 127 ] && [ $s3 -eq 1 ]
check exec_exits_with_the_command_status $? "exit 7 -> $s1, missing -> $s2, unknown node -> $s3"

# ---- roamd is not restarted by the node, but can be by hand --------------------
r2=$(status_json | field '[n["roamd_pid"] for n in d["nodes"] if n["name"]=="n2"][0]')
kill -9 "$r2" 2>/dev/null
sleep 0.5
st_dead=$(status_json | field '[n["state"] for n in d["nodes"] if n["name"]=="n2"][0]')
in_node n2 roamd --daemon >/dev/null 2>&1
st_back=""
for _ in $(seq 50); do
  st_back=$(status_json | field '[n["state"] for n in d["nodes"] if n["name"]=="n2"][0]')
  [ "$st_back" = running ] && break
  sleep 0.1
done
[ "$st_dead" = stopped ] && [ "$st_back" = running ]
check killed_roamd_shows_stopped_and_restarts_by_hand $? "after kill: $st_dead, after restart: $st_back"

# ---- down ----------------------------------------------------------------------
out=$("$ROAM" cluster down --name "$C" 2>&1)
rc=$?
left=$(leftovers "$BRIDGE" "$CPU_CG" "$MEM_CG")
[ $rc -eq 0 ] && [ -z "$left" ] && [ -s "/var/lib/roam/clusters/$C/key" ] && [ -d "$SHARED" ]
check down_leaves_nothing_but_key_and_shared_dir $? "rc=$rc out='$out' left: $(echo $left)"

out=$("$ROAM" cluster down --name "$C" 2>&1)
rc=$?
[ $rc -eq 0 ] && [ -z "$out" ]
check down_again_is_a_quiet_success $? "rc=$rc out='$out'"

out=$("$ROAM" cluster status --name "$C" 2>&1)
rc=$?
[ $rc -ne 0 ] && [ "$(echo "$out" | wc -l)" -eq 1 ]
check status_of_a_missing_cluster_fails_in_one_line $? "rc=$rc out='$out'"

# ---- crash: everything killed from the host, no down ---------------------------
"$ROAM" cluster up --name "$C" --nodes 3 --shared "$SHARED" >/dev/null 2>&1
inits=$(status_json | field '" ".join(str(n["init_pid"]) for n in d["nodes"])')
kill -9 $inits $(cat "$CPU_CG"/n*/cgroup.procs 2>/dev/null) 2>/dev/null
sleep 0.5
st_crash=$(status_json | field '" ".join(n["state"] for n in d["nodes"])')
out=$("$ROAM" cluster up --name "$C" --nodes 3 --shared "$SHARED" 2>&1)
rc=$?
st_again=$(status_json | field '" ".join(n["state"] for n in d["nodes"])')
[ "$st_crash" = "down down down" ] && [ $rc -eq 0 ] && [ "$st_again" = "running running running" ]
check up_after_a_crash_cleans_and_starts_again $? "after kill: '$st_crash', up rc=$rc '$out', then '$st_again'"

# Lose state.json too: down must still find the nodes by name.
rm -f "/var/lib/roam/clusters/$C/state.json"
"$ROAM" cluster down --name "$C" >/dev/null 2>&1
rc=$?
left=$(leftovers "$BRIDGE" "$CPU_CG" "$MEM_CG")
[ $rc -eq 0 ] && [ -z "$left" ]
check down_without_state_file_still_cleans_everything $? "rc=$rc left: $(echo $left)"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
