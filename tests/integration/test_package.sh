#!/usr/bin/env bash
# The Debian package (make package, docs/INSTALL.md): what it holds, that
# its Depends name the package of every shared library roam and roamd load,
# and that it installs into a clean root the way dpkg installs it on a
# machine (dpkg --root, maintainer scripts run chrootless with DPKG_ROOT):
# the postinst makes a 0600 cluster key and enables roamd.service, a
# reinstall keeps an edited conffile and the key, and roamd started by the
# unit's own ExecStart line (paths moved under the root, its config edited
# to a loopback address in a network namespace of its own) answers the
# installed `roam nodes` with its node alive.
#
# Needs root. Takes $BUILD/roam_*.deb (BUILD: the directory above
# $ROAM_BIN), made again with cpack when missing or older than the
# binaries. Leaves nothing installed on the host and nothing running.
set -u
source "$(dirname "$0")/lib.sh"
BUILD=$(cd "$ROAM_BIN/.." && pwd)
SRC=$(cd "$(dirname "$0")/../.." && pwd)
ROOT=$(mktemp -d /var/tmp/roam-it-package.XXXXXX)
ROAMD_PID=""
cleanup() {
  if [ -n "$ROAMD_PID" ]; then kill "$ROAMD_PID" 2>/dev/null; wait "$ROAMD_PID" 2>/dev/null; fi
  rm -rf "$ROOT"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

VERSION=$(sed -n 's/^project(roam VERSION \([0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")
HOST_KEY_BEFORE=$(ls -l /etc/roam/cluster.key 2>/dev/null)

# --- the package ---------------------------------------------------------------
deb=$(ls -t "$BUILD"/roam_*.deb 2>/dev/null | head -1)
if [ -z "$deb" ] || [ "$BUILD/bin/roamd" -nt "$deb" ] || [ "$BUILD/bin/roam" -nt "$deb" ]; then
  echo "  info: making the package (cpack -G DEB in $BUILD)"
  (cd "$BUILD" && rm -f roam_*.deb && cpack -G DEB >cpack.log 2>&1) || { fail "cpack: $(tail -3 "$BUILD/cpack.log" | tr '\n' '|')"; finish; exit 1; }
  deb=$(ls -t "$BUILD"/roam_*.deb 2>/dev/null | head -1)
fi
if [ -z "$deb" ]; then fail "no roam_*.deb in $BUILD"; finish; exit 1; fi
arch=$(dpkg --print-architecture)
check "the package is named roam_${VERSION}_$arch.deb" test "$(basename "$deb")" = "roam_${VERSION}_$arch.deb"

contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
for f in ./usr/bin/roam ./usr/sbin/roamd ./lib/systemd/system/roamd.service ./etc/roam/roamd.conf \
         ./usr/share/man/man1/roam.1.gz ./usr/share/man/man8/roamd.8.gz ./usr/share/man/man5/roamd.conf.5.gz \
         ./usr/share/bash-completion/completions/roam ./usr/share/doc/roam/INSTALL.md ./usr/share/doc/roam/LAB.md; do
  check "the package holds $f" grep -qxF "$f" <<<"$contents"
done
check "the package holds no cluster key" bash -c '! grep -q cluster.key <<<"$1"' _ "$contents"

info=$(dpkg-deb -I "$deb")
check "/etc/roam/roamd.conf is a conffile" bash -c 'dpkg-deb -I "$1" conffiles | grep -qx /etc/roam/roamd.conf' _ "$deb"
for s in postinst prerm postrm; do
  check "the package has a $s" bash -c 'dpkg-deb -I "$1" "$2" >/dev/null' _ "$deb" "$s"
done
check "the control file says version $VERSION" grep -q "^ Version: $VERSION\$" <<<"$info"

# Every shared library roam and roamd link (their NEEDED entries) comes
# from a package that Depends names, or that provides a name Depends
# names (libspdlog1.10 provides libspdlog1.10-fmt9). The library's file is
# found through ldd and its package with dpkg -S (usrmerge either way).
depends=$(dpkg-deb -f "$deb" Depends | tr ',|' '\n\n' | awk 'NF {print $1}')
missing=""
for bin in "$BUILD/bin/roamd" "$BUILD/bin/roam"; do
  for lib in $(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    path=$(ldd "$bin" | awk -v l="$lib" '$1 == l && $3 ~ /^\// {print $3}')
    [ -z "$path" ] && path=$(ldd "$bin" | awk -v l="$lib" '$1 ~ "/" l "$" {print $1}')
    pkg=""
    for p in "$path" "$(readlink -f "$path")" "/usr$path" "${path#/usr}"; do
      pkg=$(dpkg -S "$p" 2>/dev/null | head -1 | cut -d: -f1) && [ -n "$pkg" ] && break
    done
    if [ -z "$pkg" ]; then missing+=" $lib(no package)"; continue; fi
    names="$pkg $(dpkg-query -W -f '${Provides}' "$pkg" 2>/dev/null | tr ',' '\n' | awk 'NF {print $1}')"
    found=""
    for n in $names; do grep -qxF "$n" <<<"$depends" && found=yes; done
    [ -n "$found" ] || missing+=" $lib($pkg)"
  done
done
# And the one they load only when needed (dlopen, src/ckpt/net_lock.cc).
grep -qxF libnftables1 <<<"$depends" || missing+=" libnftables.so.1(libnftables1, loaded with dlopen)"
if [ -z "$missing" ]; then pass "Depends covers every library roam and roamd link or load"
else fail "Depends lacks:$missing (Depends: $(tr '\n' ' ' <<<"$depends"))"; fi

# --- installed into a clean root -------------------------------------------------
# An empty dpkg database; maintainer scripts run outside a chroot with
# DPKG_ROOT=$ROOT (the root holds no shell to chroot into).
mkdir -p "$ROOT/var/lib/dpkg/info" "$ROOT/var/lib/dpkg/updates" "$ROOT/var/lib/dpkg/triggers"
: >"$ROOT/var/lib/dpkg/status"
: >"$ROOT/var/lib/dpkg/available"
dpkg_in_root() {
  dpkg --root="$ROOT" --force-script-chrootless --force-depends --force-confold --log=/dev/null "$@" \
    >"$ROOT/dpkg.out" 2>&1
}
if dpkg_in_root -i "$deb"; then pass "dpkg -i into a clean root"
else fail "dpkg -i into a clean root: $(tail -3 "$ROOT/dpkg.out" | tr '\n' '|')"; fi
check "dpkg lists roam as installed there" bash -c 'dpkg --root="$1" -l roam | grep -q "^ii  roam "' _ "$ROOT"

key=$ROOT/etc/roam/cluster.key
check "the postinst made the cluster key" test -f "$key"
check "the key is 64 hex characters" grep -Eqx '[0-9a-f]{64}' "$key"
check "the key is mode 0600, owned by root" test "$(stat -c '%a %u %g' "$key" 2>/dev/null)" = "600 0 0"
check "the postinst said to copy the key to the other nodes" grep -q "same key" "$ROOT/dpkg.out"
check "the postinst enabled roamd.service" \
  test "$(readlink "$ROOT/etc/systemd/system/multi-user.target.wants/roamd.service")" = /lib/systemd/system/roamd.service
check "the host's own /etc/roam/cluster.key is untouched" test "$(ls -l /etc/roam/cluster.key 2>/dev/null)" = "$HOST_KEY_BEFORE"

# A reinstall (an upgrade to the same version) keeps the key and an edited conffile.
key_before=$(cat "$key" 2>/dev/null)
echo "# edited by the administrator" >>"$ROOT/etc/roam/roamd.conf"
if dpkg_in_root -i "$deb"; then pass "dpkg -i again over it"
else fail "dpkg -i again: $(tail -3 "$ROOT/dpkg.out" | tr '\n' '|')"; fi
check "a reinstall keeps the cluster key" test "$(cat "$key" 2>/dev/null)" = "$key_before"
check "a reinstall keeps the edited roamd.conf" grep -q "edited by the administrator" "$ROOT/etc/roam/roamd.conf"

# --- roamd started as the unit starts it --------------------------------------------
unit=$ROOT/lib/systemd/system/roamd.service
exec_line=$(sed -n 's/^ExecStart=//p' "$unit")
check "the unit has one ExecStart line" test "$(grep -c '^ExecStart=' "$unit")" = 1
check "the unit keeps users' jobs alive when roamd stops (KillMode=process)" grep -qx 'KillMode=process' "$unit"
check "the unit makes /run/roam (RuntimeDirectory=roam)" grep -qx 'RuntimeDirectory=roam' "$unit"
check "the unit leaves the cgroups below its own to roamd, its jobs' (Delegate=yes)" grep -qx 'Delegate=yes' "$unit"
# Every absolute path of the line moves under $ROOT; /run/roam is made as
# systemd would (RuntimeDirectory).
read -ra argv <<<"$exec_line"
for i in "${!argv[@]}"; do
  [[ ${argv[i]} == /* ]] && argv[i]=$ROOT${argv[i]}
done
mkdir -p -m 0755 "$ROOT/run/roam"
sock=$ROOT/run/roam/roamd.sock
conf=$ROOT/etc/roam/roamd.conf
# The installed config, edited the way an administrator would, to a
# loopback address in a network namespace of this test's own.
sed -i -e "s|^key_file = .*|key_file = $key|" -e "s|^bind = .*|bind = 127.0.0.1|" \
  -e "s|^multicast = .*|multicast = off|" -e "s|^control_socket = .*|control_socket = $sock|" \
  -e "s|^#name = .*|name = pkgnode|" "$conf"
edited=$(grep -cE "^(key_file = $key|bind = 127.0.0.1|multicast = off|control_socket = $sock|name = pkgnode)\$" "$conf")
check "the installed roamd.conf takes the edits (5 keys)" test "$edited" = 5
unshare --net bash -c 'ip link set lo up && exec "$@"' _ "${argv[@]}" >"$ROOT/roamd.log" 2>&1 &
ROAMD_PID=$!
node_alive() {
  "$ROOT/usr/bin/roam" --socket "$sock" nodes --json |
    jq -e '.nodes[] | select(.name == "pkgnode" and .self and .state == "alive")'
}
if t=$(wait_until 20 node_alive); then
  pass "installed roam nodes answers from the installed roamd: pkgnode alive (${t} s)"
else
  fail "installed roam nodes: no live pkgnode within 20 s; roamd log: $(tail -3 "$ROOT/roamd.log" | tr '\n' '|')"
fi
check "installed roam nodes prints its table" bash -c '"$1" --socket "$2" nodes | grep -q "^pkgnode\* "' _ "$ROOT/usr/bin/roam" "$sock"
check "installed roam --version is roam $VERSION" test "$("$ROOT/usr/bin/roam" --version)" = "roam $VERSION"
check "installed roamd --version is roamd $VERSION" test "$("$ROOT/usr/sbin/roamd" --version)" = "roamd $VERSION"
kill "$ROAMD_PID" 2>/dev/null
if wait_until 10 pid_gone "$ROAMD_PID" >/dev/null; then pass "roamd stops on SIGTERM (systemctl stop)"; else fail "roamd still runs 10 s after SIGTERM"; fi
wait "$ROAMD_PID" 2>/dev/null
ROAMD_PID=""

# --- removed and purged ------------------------------------------------------------
if dpkg_in_root --purge roam; then pass "dpkg --purge in the root"
else fail "dpkg --purge: $(tail -3 "$ROOT/dpkg.out" | tr '\n' '|')"; fi
check "purge removed the binaries" test ! -e "$ROOT/usr/sbin/roamd"
check "purge removed the key and /etc/roam" test ! -e "$ROOT/etc/roam"
finish
