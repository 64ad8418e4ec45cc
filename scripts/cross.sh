#!/usr/bin/env bash
# Raspberry Pi builds (docs/pi.md), in one command, as root on Debian 12:
#  1. installs what it needs: the host's upgrade, Debian's cross compilers,
#     the arm64/armhf -dev packages (multiarch, or a debootstrap'd sysroot
#     when the mirror cannot serve the exact versions the host has),
#     qemu-user-static, binfmt-support, debootstrap;
#  2. builds arm64 and armhf (build-arm64/, build-armhf/: the three programs
#     and every module's unit-test binary; ccache, -j2);
#  3. runs each architecture's unit tests under qemu-user and prints, per
#     architecture, how many ran, passed and failed, and every test not run
#     with the reason;
#  4. builds the .deb packages for amd64 (build-crossnative/), arm64, armhf
#     into build-debs/;
#  5. installs the arm64 flotilla-node .deb with dpkg -i + apt-get -f install
#     into a debootstrap'd arm64 root filesystem (kept in
#     /var/cache/flotilla-cross) and runs `flotilla-node --version` there;
#  6. boots a full arm64 system (scripts/pi-guest.sh: qemu-system-aarch64,
#     Debian's arm64 kernel, that package installed) and runs there, whole,
#     every unit-test binary with a test that step 3 found needing what
#     qemu-user lacks (openat2, bpf, multicast socket options, namespaces),
#     of arm64 and of armhf (32-bit programs on the 64-bit kernel, with armhf
#     libraries).
# Usage: bash scripts/cross.sh [arm64] [armhf]   (default: both)
# Env: FLOTILLA_CROSS_SKIP_TESTS=1 skips step 3; FLOTILLA_CROSS_JOBS (2).
# Exits non-zero if a build, a test or the install fails.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
cache=/var/cache/flotilla-cross
suite=bookworm
jobs=${FLOTILLA_CROSS_JOBS:-2}
# Timeouts under emulation: each test's own TIMEOUT times this.
timeout_scale=${FLOTILLA_CROSS_TIMEOUT_SCALE:-5}
arches=("$@")
((${#arches[@]})) || arches=(arm64 armhf)
export DEBIAN_FRONTEND=noninteractive
host_arch=$(dpkg --print-architecture)
start=$(date +%s)
status=0

declare -A triplet=([arm64]=aarch64-linux-gnu [armhf]=arm-linux-gnueabihf)
declare -A qemu=([arm64]=qemu-aarch64 [armhf]=qemu-arm)
# The libraries flotilla links, as in scripts/setup.sh; the header-only
# ones that are Architecture: all (nlohmann-json, CLI11) come from the host.
dev_packages=(libtorrent-rasterbar-dev libboost-dev libboost-system-dev libsodium-dev
  libzstd-dev libsqlite3-dev libgtest-dev libgmock-dev libarchive-dev libssl-dev
  libseccomp-dev libfmt-dev libspdlog-dev libcurl4-openssl-dev libpq-dev
  libhowardhinnant-date-dev)
# The programs and the unit-test binaries of every module (the CMake target
# module-unit-tests, listed in the build directory's module-unit-tests.txt;
# the end-to-end tests in tests/ drive the programs as real processes and
# are not built).
targets=(flotilla-node flotilla-node-full flotilla-monitor flotilla-tracker module-unit-tests)

log() { printf '== cross: %s\n' "$*"; }
# make_rootfs ARCH DIR [PACKAGES...]; $mirror, $security_mirror from this
# machine's apt sources (find_mirrors)
source scripts/rootfs.sh
find_mirrors

install_host_packages() {
  log "host packages (upgrade first: the :arch -dev packages need the host's exact versions)"
  apt-get update -qq || log "apt-get update reported errors (a mirror out of sync?); going on"
  apt-get upgrade -y -qq >/dev/null
  bash scripts/setup.sh
  apt-get install -y -qq --no-install-recommends g++-aarch64-linux-gnu \
    g++-arm-linux-gnueabihf qemu-user-static binfmt-support debootstrap dpkg-dev file \
    cmake ninja-build ccache pkg-config >/dev/null
}

# qemu-user through binfmt_misc: CMake runs the test binaries through the
# emulator itself, but a test may exec another target program, and the
# rootfs of step 5 is entered with chroot.
enable_binfmt() {
  if [[ ! -e /proc/sys/fs/binfmt_misc/register ]]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  fi
  local a
  for a in "${arches[@]}"; do
    update-binfmts --enable "${qemu[$a]}" >/dev/null 2>&1 || true
    [[ -e /proc/sys/fs/binfmt_misc/${qemu[$a]} ]] ||
      { echo "cross: binfmt for ${qemu[$a]} is not registered" >&2; exit 1; }
  done
}

# Prints "multiarch" when the host can install ARCH's -dev packages, else
# "sysroot". Only this architecture's index is refreshed (besides the
# host's): apt drops a whole suite's lists when one architecture's index of
# it fails to download, and must not take the others down with it.
install_multiarch() {
  local arch=$1 p pkgs=()
  dpkg --add-architecture "$arch"
  apt-get update -qq -o "APT::Architectures::=$host_arch" -o "APT::Architectures::=$arch" \
    >/dev/null 2>&1 || true
  # libpq-dev is not Multi-Arch: same (installing ARCH's would remove the
  # host's): the target gets the runtime library, and the build the host's
  # headers (tracker/storage/CMakeLists.txt).
  for p in "${dev_packages[@]}"; do
    [[ $p == libpq-dev ]] && p=libpq5
    pkgs+=("$p:$arch")
  done
  if apt-get install -s -qq --no-install-recommends "${pkgs[@]}" >/dev/null 2>&1 &&
    apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null; then
    echo multiarch
  else
    echo sysroot
  fi
}

# Configures and builds ARCH in build-ARCH. MODE is multiarch or sysroot.
build_arch() {
  local arch=$1 mode=$2 extra=()
  [[ $mode == sysroot ]] && extra+=("-DFLOTILLA_CROSS_SYSROOT=$cache/sysroot-$arch")
  [[ -n ${deb_depends_node[$arch]:-} ]] &&
    extra+=("-DFLOTILLA_DEB_NODE_DEPENDS=${deb_depends_node[$arch]}"
      "-DFLOTILLA_DEB_TRACKER_DEPENDS=${deb_depends_tracker[$arch]}")
  log "$arch: configure ($mode) and build: ${targets[*]}"
  # The native build's optimisation (-O2) without its debug info: less
  # compile time on a 2-core machine, and the same code (-g does not
  # change GCC's output); the packages ship stripped binaries anyway.
  cmake -S . -B "build-$arch" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG" "-DCMAKE_C_FLAGS_RELEASE=-O2 -DNDEBUG" \
    -DCMAKE_TOOLCHAIN_FILE="cmake/toolchain-${triplet[$arch]}.cmake" "${extra[@]}" >/dev/null
  cmake --build "build-$arch" -j"$jobs" --target "${targets[@]}"
}

# Reads a test's output under qemu-user's strace (QEMU_STRACE=1) and prints
# what qemu-user 7.2 lacks that the test needed, or nothing:
#  - syscalls answered with ENOSYS, but for the two every glibc program
#    probes and copes without (rseq: 293 on aarch64, 398 on arm;
#    set_robust_list). 437 is openat2 on both (the layer store opens every
#    path with it); bpf is named (the runtime's cgroup device filter);
#  - socket options it answers with ENOPROTOOPT (the LAN beacon's multicast
#    membership, IP_ADD_MEMBERSHIP = 35, IP_MULTICAST_IF = 32);
#  - clone with namespace flags, which it refuses with EINVAL before any
#    trace line (the runtime's "clone the container: Invalid argument").
qemu_user_gaps() {
  local trace
  trace=$(cat)
  {
    grep -oE 'Unknown syscall [0-9]+' <<<"$trace" | sed -E 's/Unknown syscall //' |
      grep -vxE '293|398' | sed -E 's/^437$/openat2 (ENOSYS)/; s/^[0-9]+$/syscall & (ENOSYS)/' ||
      true
    grep -oE '[a-z_0-9]+\([^)]*\) = -1 errno=38 ' <<<"$trace" | sed -E 's/\(.*//' |
      grep -vx 'set_robust_list' | sed 's/$/ (ENOSYS)/' || true
    grep -oE 'setsockopt\([0-9]+,[0-9]+,[0-9]+,[^)]*\) = -1 errno=92 ' <<<"$trace" |
      sed -E 's/setsockopt\([0-9]+,([0-9]+),([0-9]+),.*/setsockopt level \1 option \2 (ENOPROTOOPT)/' ||
      true
    if grep -q 'clone the container: Invalid argument' <<<"$trace"; then
      echo 'clone with namespace flags (EINVAL)'
    fi
  } | sort -u | paste -sd, - | sed 's/,/, /g'
}

# Runs ARCH's unit tests under qemu-user and prints the counts; every test
# not run is named with its reason.
test_arch() {
  # (local expands every word before it assigns any: one name per line
  # where a value uses another)
  local arch=$1 mode=$2
  local dir=build-$arch
  local logfile=$dir/cross-ctest.log
  # Emulation runs code 5-20x slower than the host: the timeouts each test
  # declares (flotilla_add_unit_test TIMEOUT) are scaled by $timeout_scale for
  # this run, in this build directory's generated gtest lists (once per
  # generation: a stamp newer than the list says it is done).
  local list
  while IFS= read -r list; do
    [[ $list.scaled -nt $list ]] && continue
    perl -pi -e "s/ TIMEOUT (\\d+) / ' TIMEOUT ' . (\$1 * $timeout_scale) . ' ' /ge" "$list"
    touch "$list.scaled"
  done < <(find "$dir" -name '*_tests.cmake')
  local env=()
  [[ $mode == sysroot ]] && env+=("QEMU_LD_PREFIX=$cache/sysroot-$arch")
  log "$arch: unit tests under ${qemu[$arch]}-static"
  env "${env[@]}" ctest --test-dir "$dir" -j"$jobs" -E '_NOT_BUILT$' --output-on-failure \
    --output-junit "$repo/$dir/cross-ctest.xml" --timeout 900 >"$logfile" 2>&1 || true
  # A test that failed after a syscall qemu-user does not implement did not
  # really run: openat2, with which the layer store opens every path (ENOSYS,
  # "Function not implemented"; qemu's strace says "Unknown syscall 437").
  # Each failure is run again alone under QEMU_STRACE to tell; those are
  # listed as needing qemu-system, not counted as failures of flotilla's.
  local results name kind run=0 passed=0 failed=0 lines=()
  results=$(python3 - "$repo/$dir/cross-ctest.xml" <<'EOF'
import sys, xml.etree.ElementTree as ET
for case in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    status = case.get("status")
    kind = {"run": "P", "notrun": "S", "disabled": "S"}.get(status, "F")
    print(kind, case.get("name"))
EOF
  ) || results=""
  while read -r kind name; do
    [[ -n $kind ]] || continue
    case $kind in
      P) run=$((run + 1)) passed=$((passed + 1)) ;;
      S) lines+=("  not run: $name: skipped by the test itself (its reason is in the log)") ;;
      F)
        # The name as a regular expression that matches only itself
        # (parameterised tests' names hold spaces, '(' and ')').
        local rerun pattern
        pattern=$(sed -E 's/[].[*+?()|^$\\]/\\&/g' <<<"$name")
        rerun=$(env "${env[@]}" QEMU_STRACE=1 ctest --test-dir "$dir" -R "^${pattern}\$" -V 2>&1 ||
          true)
        local missing
        missing=$(qemu_user_gaps <<<"$rerun")
        if [[ -n $missing ]]; then
          lines+=("  not run: $name: needs qemu-system: qemu-user 7.2 does not implement $missing")
          # Its binary (after the emulator in the test command) runs whole
          # in the guest (step 6).
          guest_binaries[$arch]+=" $(grep -m1 ': Test command: ' <<<"$rerun" | tr -d '"' |
            tr ' ' '\n' | grep -m1 '_test$')"
        else
          run=$((run + 1)) failed=$((failed + 1))
          lines+=("  failed: $name")
        fi
        ;;
    esac
  done <<<"$results"
  summary[$arch]="$arch: $run run, $passed passed, $failed failed (log: $logfile)"
  ((failed == 0 && run > 0)) || status=1
  local l
  for l in "${lines[@]}"; do summary[$arch]+=$'\n'"$l"; done
  # Tests not run: the test binaries that this run did not build.
  local t
  while IFS= read -r t; do
    [[ -n $t ]] && summary[$arch]+=$'\n'"  not run: $t"
  done < <(not_built_list "$dir")
}

# Lists the test binaries of DIR that were not built, each with the reason.
not_built_list() {
  local dir=$1 all
  all=$(ctest --test-dir "$dir" -N 2>/dev/null | sed -nE 's/^\s+Test\s+#[0-9]+: (.*)$/\1/p')
  local binary
  for binary in $(grep -E '_NOT_BUILT$' <<<"$all" | sed -E 's/_NOT_BUILT$//'); do
    if grep -qx -- "$binary" "$dir/module-unit-tests.txt"; then
      echo "$binary (every test in it): unit-test binary not built"
    else
      echo "$binary (every test in it): end-to-end binary (drives the real programs as processes), run natively by scripts/test.sh, not built for the cross run"
    fi
  done
}

# Depends of the packages built against a sysroot: dpkg-shlibdeps inside
# that root, where the target's libraries are registered packages.
sysroot_depends() {
  local arch=$1 binaries=("${@:2}") work
  local root=$cache/sysroot-$arch
  work=$(mktemp -d "$root/tmp/shlibdeps.XXXXXX")
  mkdir -p "$work/debian"
  printf 'Source: flotilla\n\nPackage: flotilla\nArchitecture: any\n' >"$work/debian/control"
  local b inside=()
  for b in "${binaries[@]}"; do
    cp "$b" "$work/" && inside+=("${work#"$root"}/$(basename "$b")")
  done
  chroot "$root" sh -c "cd '${work#"$root"}' && dpkg-shlibdeps -O ${inside[*]} 2>/dev/null" |
    sed -n 's/^shlibs:Depends=//p'
  rm -rf "$work"
}

package_arch() {
  local arch=$1 dir=$2
  log "$arch: .deb packages"
  (cd "$dir" && cpack -G DEB >/dev/null)
  mkdir -p build-debs
  cp "$dir"/flotilla-node_*_"$arch".deb "$dir"/flotilla-tracker_*_"$arch".deb build-debs/
}

# Step 5: the arm64 node package into a fresh-enough arm64 root filesystem.
install_into_rootfs() {
  local root=$cache/rootfs-arm64 deb
  deb=$(ls build-debs/flotilla-node_*_arm64.deb | tail -1)
  log "arm64: dpkg -i $(basename "$deb") + apt-get -f install in $root"
  make_rootfs arm64 "$root"
  # The package may already be there from a previous run: start clean.
  chroot "$root" dpkg --purge flotilla-node >/dev/null 2>&1 || true
  cp "$deb" "$root/tmp/"
  chroot "$root" apt-get update -qq >/dev/null 2>&1 || true
  chroot "$root" dpkg -i "/tmp/$(basename "$deb")" >/dev/null 2>&1 || true
  chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get -f install -y -qq \
    --no-install-recommends >/dev/null
  chroot "$root" dpkg -s flotilla-node | grep -q '^Status: install ok installed' ||
    { echo "cross: flotilla-node is not installed in $root" >&2; status=1; return; }
  # /proc as on any running system: the static front end finds
  # flotilla-node-full beside itself through /proc/self/exe.
  mount -t proc proc "$root/proc"
  rootfs_version=$(chroot "$root" flotilla-node --version) || status=1
  rootfs_check=$(chroot "$root" sh -c 'dpkg -s flotilla-node | grep -E "^(Status|Version|Depends):";
    stat -c "%a %U %n" /var/lib/flotilla /etc/flotilla/node.json \
      /lib/systemd/system/flotilla-node.service /usr/bin/flotilla-node \
      /usr/bin/flotilla-node-full /usr/bin/flotilla-monitor;
    echo "conffiles: $(cat /var/lib/dpkg/info/flotilla-node.conffiles)"') || status=1
  umount "$root/proc"
  rm -f "$root/tmp/$(basename "$deb")"
}

# Step 6: the tests qemu-user cannot run, in the arm64 guest: arm64's, and
# armhf's as 32-bit programs on the guest's 64-bit kernel.
guest_tests() {
  local deb stage arch b out n=0
  deb=$(ls build-debs/flotilla-node_*_arm64.deb | tail -1)
  stage=$(mktemp -d)
  for arch in "${arches[@]}"; do
    [[ -n ${built[$arch]:-} ]] || continue
    mkdir -p "$stage/$arch"
    for b in $(tr ' ' '\n' <<<"${guest_binaries[$arch]:-}" | sort -u); do
      [[ -x $b ]] && cp "$b" "$stage/$arch/" && n=$((n + 1))
    done
  done
  # The fixtures some of them read from the source tree (at this checkout's
  # path, compiled in as FLOTILLA_SOURCE_DIR), for the guest to put there.
  mkdir -p "$stage/source-files$repo/layerstore"
  cp -r layerstore/testdata "$stage/source-files$repo/layerstore/"
  log "$n test binaries ($(ls "$stage" | paste -sd' ')) in a qemu-system-aarch64 guest"
  bash scripts/pi-guest.sh prepare "$deb" >/dev/null
  if [[ -d $stage/armhf ]]; then
    local libroot=/
    [[ ${mode[armhf]} == sysroot ]] && libroot=$cache/sysroot-armhf
    bash scripts/pi-guest.sh armhf "$libroot" "$stage"/armhf/*
  fi
  out=$(FLOTILLA_GUEST_TIMEOUT=${FLOTILLA_GUEST_TIMEOUT:-1800} bash scripts/pi-guest.sh run \
    scripts/guest-unit-tests.sh "$stage"/* 2>&1) || status=1
  rm -rf "$stage"
  printf '%s\n' "$out" >build-arm64/guest-console.log
  guest_summary=$(grep '^FLOTILLA-TESTS' <<<"$out" | sed 's/^FLOTILLA-TESTS-\{0,1\}//')
  [[ -n $guest_summary ]] || { guest_summary="the guest gave no result"; status=1; }
  guest_summary+=$'\n'"(the guest's console: build-arm64/guest-console.log)"
}

declare -A summary mode deb_depends_node deb_depends_tracker guest_binaries
guest_summary=""
rootfs_version="" rootfs_check=""
install_host_packages
enable_binfmt
for arch in "${arches[@]}"; do
  mode[$arch]=$(install_multiarch "$arch")
  if [[ ${mode[$arch]} == sysroot ]]; then
    log "$arch: the host cannot install the :$arch -dev packages; building against a sysroot"
    make_rootfs "$arch" "$cache/sysroot-$arch" "${dev_packages[@]}" nlohmann-json3-dev \
      libcli11-dev dpkg-dev
  fi
done
# Back to every architecture's index (the per-architecture updates above
# left only the last one's).
apt-get update -qq >/dev/null 2>&1 || true

declare -A built
for arch in "${arches[@]}"; do
  if ! build_arch "$arch" "${mode[$arch]}"; then
    log "$arch: build FAILED"
    status=1
    continue
  fi
  built[$arch]=1
  if [[ ${mode[$arch]} == sysroot ]]; then
    deb_depends_node[$arch]=$(sysroot_depends "$arch" "build-$arch/node/flotilla-node-full")
    deb_depends_tracker[$arch]=$(sysroot_depends "$arch" "build-$arch/tracker/flotilla-tracker")
    build_arch "$arch" sysroot >/dev/null
  fi
done
if [[ -z ${FLOTILLA_CROSS_SKIP_TESTS:-} ]]; then
  for arch in "${arches[@]}"; do
    [[ -n ${built[$arch]:-} ]] && test_arch "$arch" "${mode[$arch]}"
  done
fi

log "$host_arch: native build for its .deb (build-crossnative/)"
cmake -S . -B build-crossnative -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-crossnative -j"$jobs" --target flotilla-node flotilla-monitor flotilla-tracker
package_arch "$host_arch" build-crossnative
for arch in "${arches[@]}"; do
  [[ -n ${built[$arch]:-} ]] && package_arch "$arch" "build-$arch"
done
[[ -n ${built[arm64]:-} ]] && install_into_rootfs
[[ -n ${built[arm64]:-} && -z ${FLOTILLA_CROSS_SKIP_TESTS:-} ]] && guest_tests

echo
echo "== cross: summary ($(($(date +%s) - start)) s)"
for arch in "${arches[@]}"; do
  echo "${mode[$arch]} build: $arch"
  echo "${summary[$arch]:-$arch: tests not run (FLOTILLA_CROSS_SKIP_TESTS)}"
done
echo "packages:"
for deb in build-debs/*.deb; do
  printf '  %s\n    Depends: %s\n' "$deb" "$(dpkg-deb -f "$deb" Depends)"
done
if [[ -n $rootfs_version ]]; then
  echo "arm64 rootfs ($cache/rootfs-arm64): flotilla-node --version: $rootfs_version"
  sed 's/^/  /' <<<"$rootfs_check"
fi
if [[ -n $guest_summary ]]; then
  echo "tests in a qemu-system-aarch64 guest (what qemu-user cannot run; armhf as 32-bit programs):"
  sed 's/^/  /' <<<"$guest_summary"
fi
echo "cross: status $status"
exit $status
