#!/usr/bin/env bash
# Shell habits (issue 12): bash completion of every subcommand, option,
# node name and GPID (packaging/roam.bash-completion, with and without the
# bash-completion library); the man pages made from docs/man/*.md render
# with no groff warning and cover every subcommand and every roamd.conf
# key; `roam --version`; and tables stay tables: on a real 2-node cluster
# `roam ps` shows a job whose argv holds a newline, a tab and an ESC on one
# line, with '?' for each (as procps' ps does), while --json keeps them.
#
# Needs root (a roam cluster). The completion is fed a fake `roam` on PATH
# for node names and GPIDs, and the real one for everything else.
set -u
source "$(dirname "$0")/lib.sh"
BUILD=$(cd "$ROAM_BIN/.." && pwd)
SRC=$(cd "$(dirname "$0")/../.." && pwd)
COMPLETION=$SRC/packaging/roam.bash-completion
BASH_COMPLETION_LIB=/usr/share/bash-completion/bash_completion
CLUSTER=thabits
test_frame habits
VERSION=$(sed -n 's/^project(roam VERSION \([0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")

# --- roam --version ---------------------------------------------------------------
check "roam --version prints roam $VERSION" test "$("$ROAM" --version)" = "roam $VERSION"
check "roamd --version prints roamd $VERSION" test "$("$ROAM_BIN/roamd" --version)" = "roamd $VERSION"

# --- bash completion -------------------------------------------------------------------
# A fake roam: fixed node and process tables (as roam prints them to a
# pipe), the real roam for anything else (--help).
FAKE=$DATA/fakebin
mkdir -p "$FAKE"
cat >"$FAKE/roam" <<EOF
#!/bin/sh
[ "\$1" = --socket ] && shift 2
case "\$*" in
  nodes) printf 'NODE ADDRESS STATE CPUS\nn1* 10.0.0.1:7946 alive 2\nlab-pc-07 10.0.0.2:7946 alive,blocked 4\n' ;;
  "ps --all") printf 'GPID USER HOME WHERE STATE NMIG\nn1:4242 ana n1 n1 running 0\nlab-pc-07:17 bob lab-pc-07 n1 sleeping 2\n' ;;
  *) exec "$ROAM" "\$@" ;;
esac
EOF
chmod 755 "$FAKE/roam"

# complete MODE LINE: the completions bash would offer at the end of LINE,
# one a line. MODE lib: with the bash-completion library loaded; bare: without.
# COMP_WORDS is split the way bash splits it (':' is a word of its own).
complete_line() {
  PATH=$FAKE:$PATH bash -c '
    [ "$1" = lib ] && source "$2"
    source "$3"
    COMP_LINE=$4
    COMP_POINT=${#COMP_LINE}
    read -ra COMP_WORDS <<<"${COMP_LINE//:/ : }"
    [[ $COMP_LINE == *" " ]] && COMP_WORDS+=("")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    _roam
    printf "%s\n" "${COMPREPLY[@]}"' _ "$1" "$BASH_COMPLETION_LIB" "$COMPLETION" "$2" 2>/dev/null
}
# offers MODE LINE WORDS...: every WORD is among LINE's completions.
offers() {
  local mode=$1 line=$2 w got; shift 2
  got=$(complete_line "$mode" "$line")
  for w in "$@"; do grep -qxF -- "$w" <<<"$got" || { echo "  '$line' does not offer '$w' (got: $(tr '\n' ' ' <<<"$got"))" >&2; return 1; }; done
}
# offers_only MODE LINE WORDS...: LINE's completions are exactly WORDS.
offers_only() {
  local mode=$1 line=$2; shift 2
  local got want
  got=$(complete_line "$mode" "$line" | sort)
  want=$(printf '%s\n' "$@" | sort)
  [ "$got" = "$want" ] || { echo "  '$line' offers '$(tr '\n' ' ' <<<"$got")', not '$*'" >&2; return 1; }
}
# The subcommands `roam [SUB] --help` lists (CLI11's "Subcommands:" section).
subcommands_of() {
  "$ROAM" "$@" --help | awk '/^Subcommands:/ {on = 1; next} on && /^  [a-z]/ {print $1} on && /^$/ {on = 0}'
}

modes=(bare)
if [ -r "$BASH_COMPLETION_LIB" ]; then modes+=(lib); else echo "  info: no $BASH_COMPLETION_LIB: completion tested without it only"; fi
top=$(subcommands_of)
check "roam --help lists subcommands (run, ps, nodes...)" bash -c 'grep -qx run <<<"$1" && grep -qx ps <<<"$1"' _ "$top"
for m in "${modes[@]}"; do
  check "[$m] roam <TAB> offers every subcommand of roam --help" offers "$m" "roam " $top
  for sub in node cluster image; do
    # shellcheck disable=SC2046
    check "[$m] roam $sub <TAB> offers every subcommand of roam $sub --help" offers "$m" "roam $sub " $(subcommands_of "$sub")
  done
  check "[$m] roam mig<TAB> is migrate" offers_only "$m" "roam mig" migrate
  check "[$m] roam --socket S no<TAB> skips the option's value" offers_only "$m" "roam --socket /tmp/s no" node nodes
  check "[$m] roam ps --<TAB> offers its options" offers_only "$m" "roam ps --" --all --json --help
  check "[$m] roam node balance <TAB> offers on off cost load" offers_only "$m" "roam node balance " on off cost load
  check "[$m] roam node drain <TAB> offers node names" offers_only "$m" "roam node drain " n1 lab-pc-07
  check "[$m] roam run --on <TAB> offers node names" offers_only "$m" "roam run --on " n1 lab-pc-07
  check "[$m] roam run --on l<TAB>" offers_only "$m" "roam run --on l" lab-pc-07
  check "[$m] roam kill <TAB> offers GPIDs" offers_only "$m" "roam kill " n1:4242 lab-pc-07:17
  # bash splits "n1:" at the colon and replaces only what follows it.
  check "[$m] roam kill n1:<TAB> completes the PID" offers_only "$m" "roam kill n1:" 4242
  check "[$m] roam kill -s <TAB> offers signal names" offers "$m" "roam kill -s " TERM INT KILL
  check "[$m] roam migrate <TAB> offers GPIDs" offers "$m" "roam migrate " n1:4242 lab-pc-07:17
  check "[$m] roam migrate GPID <TAB> offers nodes, home, best" offers_only "$m" "roam migrate n1:4242 " n1 lab-pc-07 home best
  check "[$m] roam lock <TAB> offers GPIDs" offers "$m" "roam lock " lab-pc-07:17
  check "[$m] roam run -- bas<TAB> completes a command" offers "$m" "roam run -- bas" bash
  check "[$m] roam run --lock ech<TAB> completes a command" offers "$m" "roam run --lock ech" echo
done

# --- man pages ------------------------------------------------------------------------
if command -v man >/dev/null; then
  for page in roam.1 roamd.8 roamd.conf.5; do
    f=$BUILD/man/$page
    if [ ! -s "$f" ]; then fail "no $f (the man target, docs/man/$page.md)"; continue; fi
    warnings=$(MANWIDTH=80 man --warnings -l "$f" 2>&1 >/dev/null)
    if [ -z "$warnings" ]; then pass "man -l $page renders without a warning"; else fail "man -l $page: $(head -3 <<<"$warnings" | tr '\n' '|')"; fi
    check "$page names itself and roam $VERSION" bash -c 'MANWIDTH=80 man -l "$1" 2>/dev/null | tail -1 | grep -q "roam $2"' _ "$f" "$VERSION"
  done
  text=$(MANWIDTH=200 man -l "$BUILD/man/roam.1" 2>/dev/null)
  missing=""
  for sub in $top; do grep -qE "^ +$sub\b|^ +[a-z]+ $sub\b|, $sub\b" <<<"$text" || missing+=" $sub"; done
  if [ -z "$missing" ]; then pass "roam(1) describes every subcommand"; else fail "roam(1) lacks:$missing"; fi
  text=$(MANWIDTH=200 man -l "$BUILD/man/roamd.conf.5" 2>/dev/null)
  missing=""
  for key in $(sed -nE 's/^#?([a-z_]+) = .*/\1/p' "$SRC/etc/roamd.conf.example" | sort -u); do
    grep -qE "(^|[ ,])$key = " <<<"$text" || missing+=" $key"
  done
  if [ -z "$missing" ]; then pass "roamd.conf(5) describes every key of roamd.conf.example"; else fail "roamd.conf(5) lacks:$missing"; fi
else
  fail "man is not installed (Debian package man-db): man pages not checked"
fi

# --- tables stay tables, on a real cluster ------------------------------------------------
if ! "$ROAM" cluster up --name "$CLUSTER" --nodes 2 --shared "$DATA" >/dev/null; then
  fail "cluster up"; finish; exit 1
fi
wait_until 30 full_mesh n1 n2 >/dev/null || fail "n1 and n2 do not see each other alive"
for m in "${modes[@]}"; do
  check "[$m] roam cluster exec --name $CLUSTER <TAB> offers the cluster's nodes" \
    offers_only "$m" "roam cluster exec --name $CLUSTER " n1 n2
done
odd=$'a\nb\tc\e[31md'  # ($(printf '\n') would be empty: $() drops trailing newlines)
bg_start home --in /dev/null "$ROAM" run --lock -- sh -c 'sleep 30' "$odd"
bg_start away --in /dev/null "$ROAM" run --on n2 -- sh -c 'sleep 30' "$odd"
two_rows() { [ "$(cx n1 -- "$ROAM" ps --json | jq '.processes | length')" = 2 ]; }
if wait_until 20 two_rows >/dev/null; then
  table=$(cx n1 -- "$ROAM" ps)
  check "roam ps: one line per process, header first (3 lines)" test "$(wc -l <<<"$table")" = 3
  check "roam ps shows the newline, tab and ESC as '?'" test "$(grep -cF 'a?b?c?[31md' <<<"$table")" = 2
  check "roam ps writes no control character" bash -c '! LC_ALL=C grep -q "[[:cntrl:]]" <<<"$1"' _ "$table"
  check "roam ps --json keeps the argument as it is" \
    bash -c 'jq -e --arg a "$2" "[.processes[] | select(.command | endswith(\$a))] | length == 2" <<<"$1"' _ \
    "$(cx n1 -- "$ROAM" ps --json)" "$odd"
  table=$(cx n2 -- "$ROAM" ps --all)
  check "roam ps --all from the other node: one line per process" test "$(wc -l <<<"$table")" = 3
else
  fail "the two jobs do not show in roam ps --json within 20 s: $(cat "$DATA"/*.err 2>/dev/null | head -3 | tr '\n' '|')"
fi
finish
