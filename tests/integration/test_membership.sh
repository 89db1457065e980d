#!/usr/bin/env bash
# Membership on a real 4-node `roam cluster`: discovery by multicast, crash
# detection, rejoin, wrong key, graceful leave, partition and heal, and
# administrative changes spreading by gossip.
set -u
source "$(dirname "$0")/lib.sh"
CLUSTER=itmemb
NODES=(n1 n2 n3 n4)
trap '"$ROAM" cluster down --name $CLUSTER >/dev/null 2>&1' EXIT

"$ROAM" cluster down --name $CLUSTER >/dev/null 2>&1
if ! "$ROAM" cluster up --name $CLUSTER --nodes 4 --cpu-quota 1,0.5,0.5,0.25; then
  fail "cluster up"
  finish; exit 1
fi

# 1. Zero configuration: the nodes find each other by multicast alone.
if t=$(wait_until 30 full_mesh "${NODES[@]}"); then
  pass "4 nodes alive in each other's tables after ${t}s (goal: 3 s)"
else
  fail "4 nodes never formed one membership"
fi
check "load vectors of every node reach n1" \
  wait_until 10 bash -c "[ \"\$(source $(dirname "$0")/lib.sh; CLUSTER=$CLUSTER; json_field n1 n4 cpu_share)\" = 0.25 ]"

# 2. A crashed roamd is declared dead by every other node.
victim=$(roamd_pid n3)
kill -9 "$victim"
if t=$(wait_until 30 all_see n3 dead n1 n2 n4); then
  pass "kill -9 of n3's roamd: n1, n2, n4 say dead after ${t}s (goal: 5 s)"
else
  fail "n3 never declared dead by all"
fi

# 3. It comes back with a higher incarnation and is alive again.
inc_before=$(json_field n1 n3 incarnation)
cx n3 -- "$ROAM_BIN/roamd" --daemon
if t=$(wait_until 30 all_see n3 alive n1 n2 n4); then
  pass "restarted n3 is alive again after ${t}s"
else
  fail "restarted n3 not alive everywhere"
fi
inc_after=$(json_field n1 n3 incarnation)
check "n3 rejoined with a higher incarnation ($inc_before -> $inc_after)" test "$inc_after" -gt "$inc_before"

# 4. A node with the wrong key is never admitted.
kill -9 "$(roamd_pid n4)"
wait_until 30 all_see n4 dead n1 n2 n3 >/dev/null
bad_mac_before=$(counter n1 dropped_bad_mac)
cx n4 -- sh -c 'head -c32 /dev/urandom | od -An -tx1 | tr -d " \n" > /tmp/wrong.key; chmod 600 /tmp/wrong.key'
cx n4 -- "$ROAM_BIN/roamd" --daemon --key /tmp/wrong.key
sleep 8
check "a node with the wrong key stays out (n1 sees n4: $(state_seen n1 n4))" all_see n4 dead n1 n2 n3
check "the node with the wrong key admits nobody" bash -c \
  "[ \"\$(source $(dirname "$0")/lib.sh; CLUSTER=$CLUSTER; state_seen n4 n1)\" != alive ]"
bad_mac_after=$(counter n1 dropped_bad_mac)
check "n1 counted its datagrams as bad MAC ($bad_mac_before -> $bad_mac_after)" test "$bad_mac_after" -gt "$bad_mac_before"
kill -9 "$(roamd_pid n4)"
sleep 0.5
cx n4 -- "$ROAM_BIN/roamd" --daemon
check "with the right key n4 is admitted" wait_until 30 full_mesh "${NODES[@]}"

# 5. Administrative changes travel with the load information.
cx n2 -- "$ROAM" node speed 4321
cx n2 -- "$ROAM" node block
check "speed set on n2 is seen by n4" wait_until 15 bash -c \
  "[ \"\$(source $(dirname "$0")/lib.sh; CLUSTER=$CLUSTER; json_field n4 n2 speed)\" = 4321 ]"
check "blocked n2 is seen refusing guests by n1" wait_until 15 bash -c \
  "[ \"\$(source $(dirname "$0")/lib.sh; CLUSTER=$CLUSTER; json_field n1 n2 accepts_guests)\" = false ]"
cx n2 -- "$ROAM" node unblock
cx n2 -- "$ROAM" node speed 0
check "roam mon prints the table twice when piped" bash -c \
  "[ \$(\"$ROAM\" cluster exec --name $CLUSTER n1 -- \"$ROAM\" mon -n 2 | grep -c '^n4 ') = 2 ]"
check "an unprivileged user can read the table" cx n1 -- setpriv --reuid=65534 --regid=65534 --clear-groups "$ROAM" nodes
if cx n1 -- setpriv --reuid=65534 --regid=65534 --clear-groups "$ROAM" node speed 5 2>/tmp/roam-it-err; then
  fail "an unprivileged user changed the speed"
else
  check "an unprivileged user cannot change the speed ($(cat /tmp/roam-it-err))" grep -q "needs root" /tmp/roam-it-err
fi

# 6. Partition {n1,n2} | {n3,n4}, then heal: one membership again.
a1=$(node_address n1); a2=$(node_address n2); a3=$(node_address n3); a4=$(node_address n4)
for n in n1 n2; do for a in $a3 $a4; do cx $n -- ip route add blackhole "$a/32"; done; done
for n in n3 n4; do for a in $a1 $a2; do cx $n -- ip route add blackhole "$a/32"; done; done
check "partition: n1 sees n3 dead" wait_until 30 all_see n3 dead n1 n2
check "partition: n4 sees n1 dead" wait_until 30 all_see n1 dead n3 n4
check "partition: each side stays alive to itself" all_see n2 alive n1
for n in n1 n2; do for a in $a3 $a4; do cx $n -- ip route del blackhole "$a/32"; done; done
for n in n3 n4; do for a in $a1 $a2; do cx $n -- ip route del blackhole "$a/32"; done; done
if t=$(wait_until 60 full_mesh "${NODES[@]}"); then
  pass "healed partition is one membership again after ${t}s"
else
  fail "healed partition did not merge"
fi

# 7. A node without multicast joins from a static peer list and learns everyone.
kill -9 "$(roamd_pid n4)"
wait_until 30 all_see n4 dead n1 n2 n3 >/dev/null
cx n4 -- "$ROAM_BIN/roamd" --daemon --multicast off --peers "$a1:7946"
check "n4 joining from the static peer n1 alone learns the whole membership" wait_until 30 full_mesh "${NODES[@]}"

# 8. Graceful leave is announced: the others say left, not dead.
cx n2 -- pkill -TERM -x roamd
check "n2's graceful leave is seen as left" wait_until 15 all_see n2 left n1 n3 n4
cx n2 -- "$ROAM_BIN/roamd" --daemon
check "n2 back after leaving" wait_until 30 full_mesh "${NODES[@]}"

finish
