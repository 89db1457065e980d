#!/usr/bin/env bash
# The dashboard's HTTP side and /metrics on a real 4-node `roam cluster`
# (docs/DASHBOARD.md): the token is asked of every request; /metrics passes
# promtool and its counters move when a process runs, moves and when a node
# dies; the JSON API shows and moves processes; a roamd with a dashboard it
# cannot serve says so in one line and does not start.
# The page itself is driven in Chromium by test_dashboard.sh.
set -u
source "$(dirname "$0")/lib.sh"
CLUSTER=tmetrics
test_frame metrics

"$ROAM" cluster down --name $CLUSTER >/dev/null 2>&1
if ! "$ROAM" cluster up --name $CLUSTER --nodes 4 >/dev/null; then
  fail "cluster up"; finish; exit 1
fi
wait_until 20 full_mesh n1 n2 n3 n4 >/dev/null || fail "cluster never formed"
balance_off n1 n2 n3 n4

URL=$(cx n1 -- "$ROAM" web)
BASE=${URL%%\?*}
TOKEN=${URL##*token=}
N1=$(node_address n1)
check "roam web prints the node's address and a 32-character token" \
  test "$BASE" = "http://$N1:7948/" -a ${#TOKEN} -eq 32
check "every node gives the same token (made from the cluster key)" \
  test "$(cx n3 -- "$ROAM" web)" = "http://$(node_address n3):7948/?token=$TOKEN"
out=$(cx n1 -- setpriv --reuid=65534 --regid=65534 --clear-groups "$ROAM" web 2>&1); rc=$?
check "an ordinary user gets no token: one line, non-zero ($out)" \
  test $rc -ne 0 -a "$(printf '%s\n' "$out" | wc -l)" -eq 1

code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
auth=(-H "Authorization: Bearer $TOKEN")
check "/metrics without a token: 401" test "$(code "${BASE}metrics")" = 401
check "/api/state with a wrong token: 401" test "$(code -H "Authorization: Bearer ${TOKEN%?}x" "${BASE}api/state")" = 401
check "the page without a token: 401" test "$(code "$BASE")" = 401
check "a POST without a token moves nothing: 401" \
  test "$(code -X POST -d '{"gpid":"n1:1","to":"n2"}' "${BASE}api/migrate")" = 401
check "/metrics with the token: 200" test "$(code "${auth[@]}" "${BASE}metrics")" = 200
cookie=$(curl -s -D - -o /dev/null "${BASE}?token=$TOKEN" | tr -d '\r' | grep -i '^set-cookie: roam_token=')
check "the page opened with ?token= gets an HttpOnly cookie" grep -q "HttpOnly" <<<"$cookie"
check "the cookie alone is enough" test "$(code -H "Cookie: roam_token=$TOKEN" "${BASE}api/state")" = 200

metrics() { curl -s "${auth[@]}" "${BASE}metrics"; }
metric() {  # metric NAME{LABELS}: its value on n1, or ""
  metrics | awk -v m="$1" 'index($0, m " ") == 1 {print $2}'
}
metrics >"$DATA/m0.txt"
if promtool check metrics <"$DATA/m0.txt" >"$DATA/promtool.out" 2>&1; then
  pass "promtool check metrics passes"
else
  fail "promtool check metrics: $(head -3 "$DATA/promtool.out")"
fi
check "every node's state is there, n4 alive" grep -q '^roam_member_state{node="n4",state="alive"} 1$' "$DATA/m0.txt"
check "per-node load, memory and PSI are there" \
  grep -q '^roam_node_memory_pressure_percent{node="n2"} ' "$DATA/m0.txt"
check "no move yet" test "$(metric 'roam_migrations_started_total{node="n1"}')" = 0

# A process runs: homes and guests count it.
bg_start sleeper "$ROAM" run --on n2 -- sleep 300
home_is_one() { [ "$(metric 'roam_node_home_processes{node="n1"}')" = 1 ]; }
guest_is_one() { [ "$(metric 'roam_node_guest_processes{node="n2"}')" = 1 ]; }
check "a process run from n1 on n2: n1 counts a home process" wait_until 15 home_is_one
check "... and n2 a guest" wait_until 15 guest_is_one

# The JSON API shows it and moves it.
gpid_of() { curl -s "${auth[@]}" "${BASE}api/state" | jq -r '[.processes[] | select(.command == "sleep 300") | .gpid] | first // ""'; }
G=$(gpid_of)
check "/api/state lists the process, on n2 ($G)" \
  test "$(curl -s "${auth[@]}" "${BASE}api/state" | jq -r --arg g "$G" '.processes[] | select(.gpid == $g) | .where')" = n2
reply=$(curl -s "${auth[@]}" -X POST -d "{\"gpid\":\"$G\",\"to\":\"n3\"}" "${BASE}api/migrate")
check "POST /api/migrate moves it to n3 ($reply)" test "$(jq -r '.ok' <<<"$reply")" = true
check "roam ps agrees: on n3, moved once" \
  test "$(cx n1 -- "$ROAM" ps --json | jq -r --arg g "$G" '.processes[] | select(.gpid == $g) | "\(.where) \(.nmig)"')" = "n3 1"
reply=$(curl -s -w ' %{http_code}' "${auth[@]}" -X POST -d "{\"gpid\":\"$G\",\"to\":\"nowhere\"}" "${BASE}api/migrate")
check "a move to no such node: 404 with one line ($reply)" grep -q '"error":"no node named nowhere.* 404$' <<<"$reply"
reply=$(curl -s -w ' %{http_code}' "${auth[@]}" -X POST -d 'not json' "${BASE}api/migrate")
check "a malformed body: 400 ($reply)" grep -q ' 400$' <<<"$reply"
check "the migration counters moved: 1 started, 1 succeeded, 0 failed" \
  test "$(metric 'roam_migrations_started_total{node="n1"}') $(metric 'roam_migrations_succeeded_total{node="n1"}') $(metric 'roam_migrations_failed_total{node="n1"}')" = "1 1 0"
check "its frozen time is in the histogram" \
  test "$(metric 'roam_migration_frozen_seconds_count{node="n1"}')" = 1 -a "$(metric 'roam_migration_frozen_seconds_bucket{node="n1",le="+Inf"}')" = 1
progress=$(curl -s "${auth[@]}" "${BASE}api/progress?gpid=$G")
check "no move under way: /api/progress says so ($progress)" test "$(jq -r '.moving' <<<"$progress")" = false
events=$(timeout 4 curl -s -N -H "Cookie: roam_token=$TOKEN" "${BASE}api/events" | grep -c '^event: state')
check "/api/events streams the state (one a second: $events in 4 s)" test "$events" -ge 2
history=$(curl -s "${auth[@]}" "${BASE}api/history" | jq -r '.nodes.n4 | length')
check "/api/history has n4's samples ($history)" test "${history:-0}" -ge 3

# A blocked node: the page's table and /metrics say so.
cx n1 -- "$ROAM" node block n3 >/dev/null
n3_blocked() {
  [ "$(curl -s "${auth[@]}" "${BASE}api/state" | jq -r '.nodes[] | select(.name == "n3") | .blocked')" = true ]
}
took=$(wait_until 15 n3_blocked) && pass "roam node block n3: /api/state shows n3 blocked after ${took}s" ||
  fail "n3 never blocked in /api/state"
check "... and /metrics: n3 accepts no guests" test "$(metric 'roam_node_accepts_guests{node="n3"}')" = 0
check "... n2 still does" test "$(metric 'roam_node_accepts_guests{node="n2"}')" = 1
cx n1 -- "$ROAM" node unblock n3 >/dev/null

# A node dies: the membership counters and states move.
dead_before=$(metric 'roam_membership_events_total{node="n1",event="dead"}')
kill -9 "$(roamd_pid n4)"
n4_dead() { [ "$(metric 'roam_member_state{node="n4",state="dead"}')" = 1 ]; }
took=$(wait_until 30 n4_dead) && pass "n4's roamd killed: /metrics shows n4 dead after ${took}s" || fail "n4 never dead in /metrics"
check "the dead event was counted" \
  test "$(metric 'roam_membership_events_total{node="n1",event="dead"}')" -gt "${dead_before:-0}"
metrics >"$DATA/m1.txt"
if promtool check metrics <"$DATA/m1.txt" >"$DATA/promtool.out" 2>&1; then
  pass "promtool still passes with a dead node and a move"
else
  fail "promtool after: $(head -3 "$DATA/promtool.out")"
fi

# A roamd whose dashboard cannot be served does not start, and says why.
conf=$DATA/bad.conf
printf 'name = x1\ncluster = bad\ninsecure = true\nbind = 127.0.0.1\nport = 17946\nmulticast = off\ncontrol_socket = %s/bad.sock\nhttp = 127.0.0.1:%s\n' "$DATA" "$(( 20000 + RANDOM % 20000 ))" >"$conf"
sed 's/^http = .*/http = eighty/' "$conf" >"$DATA/bad2.conf"
out=$(timeout 10 "$ROAM_BIN/roamd" -c "$DATA/bad2.conf" 2>&1); rc=$?
check "http = eighty: roamd refuses the line, non-zero ($out)" \
  test $rc -ne 0 -a "$(printf '%s\n' "$out" | wc -l)" -eq 1 -a -n "$(grep 'line 8: http' <<<"$out")"
port=$(sed -n 's/^http = 127.0.0.1://p' "$conf")
python3 -c 'import socket,sys,time; s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(); time.sleep(15)' "$port" &
BG_PIDS+=($!)
sleep 0.5
out=$(timeout 10 "$ROAM_BIN/roamd" -c "$conf" 2>&1); rc=$?
# (roamd logs to stderr here: its log lines come too.)
check "a dashboard port in use: roamd says so in one line and stops ($out)" \
  test $rc -ne 0 -a "$(grep -c '^roamd: ' <<<"$out")" -eq 1 -a -n "$(grep '^roamd: dashboard: cannot listen on 127.0.0.1:' <<<"$out")"

finish
