#!/usr/bin/env bash
# Installs the Debian 12 packages roam builds and runs with, if any is
# missing. Needs root (apt-get); does nothing when all are present.
# libnftables holds a TCP connection still while the engine carries it;
# libmnl puts a job's own address on an interface.
# povray and xz-utils are multi-threaded programs the engine is tried on
# (tests/integration/test_ckpt_real_programs.sh), valgrind one without a
# vDSO and with fds at the top of its limit (the same test); a JDK (its JVM keeps a
# perf-data file that moves with it) is moved in tests/integration/test_migrate.sh;
# lame encodes the seeds' workload in bench/balance_bench.sh;
# openssh-server, openssh-client and parallel are the references of
# bench/run_bench.sh (which starts its own sshd inside cluster nodes only);
# no service is started on this host while installing (policy-rc.d).
# The dashboard (docs/DASHBOARD.md): cpp-httplib serves it, nodejs and npm
# build its page (web/) (Debian's unless a Node.js is there), chromium drives it in tests/integration/
# test_dashboard.sh, promtool (package prometheus) checks /metrics.
# Packaging (docs/INSTALL.md): dpkg-dev and fakeroot build the .deb, pandoc
# makes the man pages from docs/man/*.md, man-db renders them in tests.
set -euo pipefail
pkgs=(cmake g++ clang libclang-rt-14-dev make pkg-config
      libasio-dev libprotobuf-dev protobuf-compiler libcli11-dev
      libspdlog-dev libfmt-dev nlohmann-json3-dev libsodium-dev libssl-dev libxxhash-dev
      liblz4-dev libzstd-dev libnftables-dev libmnl-dev
      libncurses-dev libgtest-dev libgmock-dev
      iproute2 util-linux procps python3 bc jq
      openssh-server openssh-client parallel lame xz-utils povray valgrind openjdk-17-jdk-headless
      libcpp-httplib-dev chromium prometheus
      dpkg-dev fakeroot pandoc bash-completion man-db)
# Node.js with npm: this machine's own if it has one (a Node.js from
# elsewhere conflicts with Debian's npm), else Debian's.
command -v npm >/dev/null || pkgs+=(nodejs npm)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages (${missing[*]}) and not root; run as root" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Keep postinst scripts from starting services (openssh-server would start an
# sshd on the host): invoke-rc.d honours policy-rc.d, exit 101 = "not allowed".
# An existing policy-rc.d (a container's, say) is left as it is.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
