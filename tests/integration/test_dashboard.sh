#!/usr/bin/env bash
# The dashboard in a real browser against a real 4-node `roam cluster`:
# headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core
# through tests/web/dashboard.mjs) opens the address `roam web` prints
# on n1 and sees the 4 nodes with live load; a process dragged in migmon onto
# another node's box moves there (checked with `roam ps`); a node whose
# roamd is killed turns dead on the page within seconds; requests without
# the token are refused (the browser and curl). Screenshots are kept in
# $ROAM_BIN/../test-artifacts/dashboard/.
#
# Needs root, node and the build tree's web modules (cmake/WebUi.cmake).
set -u
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
STEPS="$HERE/../web/dashboard.mjs"
BUILD=$(cd "$ROAM_BIN/.." && pwd)
ART="$BUILD/test-artifacts/dashboard"
export ROAM_WEBUI_MODULES="$BUILD/webui/node_modules"
CLUSTER=tdash
test_frame dash  # DATA: the cluster's shared directory
mkdir -p "$ART" && rm -f "$ART"/*.png

# browser STEP ARGS...: one step of dashboard.mjs in a fresh Chromium; its
# PASS/FAIL lines are counted here, and a step that dies counts as a failure.
browser() {
  local step=$1 line out rc
  out=$(timeout -k 5 120 node "$STEPS" "$@" --out "$ART" 2>"$DATA/browser.err"); rc=$?
  while IFS= read -r line; do
    case $line in
      "PASS "*) pass "${line#PASS }" ;;
      "FAIL "*) fail "${line#FAIL }" ;;
      ?*) echo "  $line" ;;
    esac
  done <<<"$out"
  if [ $rc -ne 0 ] && ! grep -q '^FAIL ' <<<"$out"; then
    fail "browser step $step exited with $rc: $(head -c 400 "$DATA/browser.err")"
  fi
}
http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@"; }

for need in /usr/bin/chromium "$ROAM_WEBUI_MODULES/playwright-core"; do
  [ -e "$need" ] || { fail "missing $need (Debian's chromium; the dashboard's npm ci in the build tree)"; finish; exit 1; }
done

"$ROAM" cluster up --name $CLUSTER --nodes 4 --shared "$DATA" >/dev/null || { fail "cluster up"; finish; exit 1; }
wait_until 20 full_mesh n1 n2 n3 n4 >/dev/null || fail "cluster never formed"
balance_off n1 n2 n3 n4  # the dragged process moves only when the page moves it
# High home PIDs: a PID taken on the guest by chance would refuse the move.
cx n1 -- sh -c 'echo 20000 >/proc/sys/kernel/ns_last_pid' || fail "cannot set n1's ns_last_pid"

# --- the address and the token ------------------------------------------------
# `roam web` prints it.
WEB_CMD=web
URL=$(cx n1 -- "$ROAM" $WEB_CMD 2>"$DATA/web.err" | head -1)
if [[ $URL =~ ^http://([0-9.]+:[0-9]+)/\?token=([0-9a-f]+)$ ]]; then
  pass "roam $WEB_CMD on n1 prints the address to open ($URL)"
else
  fail "roam $WEB_CMD on n1 prints '$URL' $(head -c 200 "$DATA/web.err")"
  finish; exit 1
fi
BASE=http://${BASH_REMATCH[1]}
TOKEN=${BASH_REMATCH[2]}
wait_until 10 sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 '$URL')\" = 200 ]" >/dev/null ||
  fail "n1's dashboard does not answer at $URL"
check "curl: / without the token is refused (HTTP $(http_code "$BASE/"))" [ "$(http_code "$BASE/")" = 401 ]
check "curl: /api/state without the token is refused (HTTP $(http_code "$BASE/api/state"))" [ "$(http_code "$BASE/api/state")" = 401 ]
check "curl: /api/state with a wrong token is refused" [ "$(http_code -H "Authorization: Bearer 00$TOKEN" "$BASE/api/state")" = 401 ]
check "curl: POST /api/migrate without the token is refused" \
  [ "$(http_code -X POST -d '{"gpid":"n1:1","to":"n2"}' "$BASE/api/migrate")" = 401 ]
check "curl: /api/state with the token lists 4 nodes" \
  sh -c "curl -sf --max-time 5 -H 'Authorization: Bearer $TOKEN' '$BASE/api/state' | jq -e '.nodes | length == 4' >/dev/null"

# --- a busy process on n2, to watch and to drag --------------------------------
bg_start busy "$ROAM" run --on n2 -- python3 -c 'while True: pass'
P=$(bg_pid busy)
G=n1:$P
where_is() { [ "$(home_ps_field "$1" where)" = "$2" ]; }
wait_until 15 where_is "$G" n2 >/dev/null || fail "$G never ran on n2 (roam ps: $(home_ps_field "$G" where))"

# --- the browser ----------------------------------------------------------------
browser live --url "$URL" --nodes n1,n2,n3,n4 --gpid "$G"
browser drag --url "$URL" --gpid "$G" --from n2 --to n3
check "roam ps after the drag: $G runs on $(home_ps_field "$G" where) (want n3)" where_is "$G" n3
check "roam ps after the drag: NMIG $(home_ps_field "$G" nmig) (want 1)" [ "$(home_ps_field "$G" nmig)" = 1 ]
browser noauth --url "$URL"
victim=$(roamd_pid n4)
browser dead --url "$URL" --node n4 --kill "kill -9 $victim" --within 15
check "n4's roamd was killed" pid_gone "$victim"

echo "screenshots: $ART"
finish
