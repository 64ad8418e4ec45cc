#!/usr/bin/env bash
# Installs every Debian 12 package that flotilla's build, tests, demo and
# benchmarks need. Idempotent: safe to run again; installs nothing twice.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git clang-14 libclang-rt-14-dev
  # lld-14: clang-14 links the arm executables of flotilla-tracker agent publish's tests
  lld-14
  # libraries
  libtorrent-rasterbar-dev libboost-dev libboost-system-dev libsodium-dev
  libzstd-dev libsqlite3-dev libgtest-dev libgmock-dev libarchive-dev
  nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev libseccomp-dev
  libssl-dev libcurl4-openssl-dev libpq-dev
  # maintenance windows: date-tz reads the IANA zones of /usr/share/zoneinfo
  libhowardhinnant-date-dev tzdata
  # the tracker tests' PostgreSQL clusters (tests/support/postgres_cluster.h)
  # and the load balancer in front of it (tests/tracker/tracker_haproxy_test.cpp)
  postgresql-15 haproxy
  # the HTTP proxy of the nodes-behind-a-proxy tests (tests/support/tinyproxy.h)
  tinyproxy
  # the OCI registry the publish-from-a-registry tests start (tests/tracker/registry_publish_test.cpp);
  # the tests start their own on loopback: the service the package starts is stopped below
  docker-registry
  # tools used by tests, the demo and the benchmarks
  # (time: /usr/bin/time measures peak memory in a test and bench/delta)
  openssl python3-cryptography zstd sqlite3 bc coreutils tar gzip xz-utils attr curl procps psmisc time
  busybox-static umoci skopeo iproute2 iptables nftables python3-libtorrent
  runc wrk hyperfine gnuplot-nox chromium e2fsprogs
  # the tree's own checks (scripts/check-format.sh, scripts/check-architecture.py)
  clang-format python3
  # systemd-analyze verify of the node's unit file
  systemd
  # baselines of bench/tracker-load (BitTorrent tracker, static file server)
  opentracker nginx-light
  # baselines and corpus of bench/delta
  debootstrap xdelta3
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${#missing[@]} package(s): ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all packages present"
fi

# Tests start their own registry; the package's service would hold port 5000.
if systemctl is-enabled docker-registry >/dev/null 2>&1; then
  systemctl disable --now docker-registry >/dev/null 2>&1 || true
fi

# npm packages of the TUF cross-check tests (tuf-js), pinned by their lock file.
bash "$(dirname "$0")/setup-tuf-js.sh"
