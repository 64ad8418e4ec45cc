#!/usr/bin/env bash
# A full arm64 system for what qemu-user cannot show (docs/pi.md, "The
# arm64 guest"): qemu-system-aarch64 (TCG; a Cortex-A72 like a Pi 4, 2 cores,
# 512 MiB like the smallest Pis flotilla serves) booting Debian 12's arm64
# kernel on a debootstrap'd arm64 root filesystem that holds the arm64
# flotilla-node .deb, installed with dpkg -i + apt-get -f install.
#
#   scripts/pi-guest.sh prepare [DEB]
#       builds (once; kept in /var/cache/flotilla-cross/guest-arm64) the root
#       filesystem with iproute2 and Debian's arm64 kernel and initrd, then
#       installs the package DEB (over any earlier one).
#   scripts/pi-guest.sh armhf LIBROOT BINARY...
#       copies into that root the armhf shared libraries the armhf BINARYs
#       need (their DT_NEEDED, recursively, and the loader) from LIBROOT,
#       the Debian armhf libraries they were linked against: / for the
#       host's multiarch ones, or a sysroot. They run in the guest as 32-bit
#       programs on its 64-bit kernel (compat), as on a Pi 3/4/5 running
#       32-bit Raspberry Pi OS, whose kernel is 64-bit. The guest's apt is
#       not asked: a mirror whose armhf index lags its arm64 one (a security
#       index mid-sync) cannot give both the same versions (Multi-Arch: same).
#   scripts/pi-guest.sh run JOB [FILE...]
#       boots a fresh disk image of that root with JOB (a shell script) and
#       each FILE copied into /job/, runs JOB as the guest's only task (PID 1
#       mounts /proc, /sys, /dev, brings up the network: the host is
#       10.0.2.2, qemu's user-mode network) and powers off; prints the
#       guest's console and exits with JOB's exit code.
#   Env: FLOTILLA_GUEST_TIMEOUT (s, default 900) bounds a run.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=/var/cache/flotilla-cross
root=$cache/guest-arm64
suite=bookworm
export DEBIAN_FRONTEND=noninteractive

log() { printf '== pi-guest: %s\n' "$*" >&2; }
# make_rootfs ARCH DIR [PACKAGES...]; $mirror, $security_mirror from this
# machine's apt sources (find_mirrors)
source scripts/rootfs.sh
find_mirrors

need_host_tools() {
  local missing=()
  command -v qemu-system-aarch64 >/dev/null || missing+=(qemu-system-arm)
  [[ -e /usr/bin/qemu-aarch64-static ]] || missing+=(qemu-user-static binfmt-support)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v mkfs.ext4 >/dev/null || missing+=(e2fsprogs)
  if ((${#missing[@]})); then
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  if [[ ! -e /proc/sys/fs/binfmt_misc/register ]]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  fi
  update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
}

# The guest's PID 1: mounts, network, the job, power off (sysrq: there is no
# init system to ask). Its last console line carries the job's exit code.
write_init() {
  cat >"$root/flotilla-guest-init" <<'INIT'
#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
# (the initramfs already moved /sys, /proc and /dev onto the root)
mountpoint -q /proc || mount -t proc proc /proc
mountpoint -q /sys || mount -t sysfs sys /sys
mountpoint -q /dev || mount -t devtmpfs dev /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
# /tmp stays on the disk: tmpfs has no user.* xattrs before Linux 6.6 (the layer store keeps them)
mount -t tmpfs run /run
mkdir -p /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup
ip link set lo up
nic=$(ls /sys/class/net | grep -v '^lo$' | head -1)
ip link set "$nic" up
ip addr add 10.0.2.15/24 dev "$nic"
ip route add default via 10.0.2.2
echo "FLOTILLA-GUEST: up ($(uname -m), $(nproc) cpu, $(awk '/MemTotal/ {print $2}' /proc/meminfo) kB)"
cd /job && sh /job/job.sh
echo "FLOTILLA-GUEST-EXIT $?"
sync
echo o >/proc/sysrq-trigger
sleep 10
INIT
  chmod 755 "$root/flotilla-guest-init"
}

prepare() {
  local deb=${1:-}
  [[ -z $deb || -f $deb ]] || { echo "pi-guest: no such package: $deb" >&2; exit 2; }
  need_host_tools
  log "debootstrap arm64 $suite into $root (once; second stage under qemu-user)"
  make_rootfs arm64 "$root"
  if [[ ! -e $root/.flotilla-kernel ]]; then
    log "kernel, initramfs and tools inside the guest root (under qemu-user: minutes)"
    chroot "$root" apt-get update -qq >/dev/null 2>&1 || true
    # The initrd holds only what the guest boots with: virtio's block and
    # network drivers and ext4 (modules in Debian's kernel). MODULES=most
    # would copy thousands of modules under emulation (over 20 minutes).
    mkdir -p "$root/etc/initramfs-tools/conf.d"
    printf 'MODULES=list\nCOMPRESS=gzip\n' >"$root/etc/initramfs-tools/conf.d/flotilla-guest"
    printf 'virtio_mmio\nvirtio_blk\nvirtio_net\next4\n' >"$root/etc/initramfs-tools/modules"
    chroot "$root" apt-get install -y -qq --no-install-recommends linux-image-arm64 \
      initramfs-tools iproute2 procps >/dev/null
    touch "$root/.flotilla-kernel"
  fi
  # The unit tests' containers run busybox (/bin/busybox, as on the host).
  if [[ ! -x $root/bin/busybox ]]; then
    chroot "$root" apt-get update -qq >/dev/null 2>&1 || true
    chroot "$root" apt-get install -y -qq --no-install-recommends busybox-static >/dev/null
  fi
  write_init
  [[ -n $deb ]] || return 0
  log "installing $(basename "$deb") with dpkg -i + apt-get -f install"
  cp "$deb" "$root/tmp/flotilla-node.deb"
  chroot "$root" dpkg -i /tmp/flotilla-node.deb >/dev/null 2>&1 || true
  chroot "$root" apt-get -f install -y -qq --no-install-recommends >/dev/null
  chroot "$root" dpkg -s flotilla-node | grep -q '^Status: install ok installed' ||
    { echo "pi-guest: flotilla-node did not install" >&2; exit 1; }
  rm -f "$root/tmp/flotilla-node.deb"
  log "ready: $(chroot "$root" dpkg-query -W -f '${Package} ${Version} ${Architecture}' flotilla-node)"
}

# Prints where LIBROOT holds the armhf library NAME, or fails.
find_armhf_library() {
  local dir
  for dir in usr/lib/arm-linux-gnueabihf lib/arm-linux-gnueabihf usr/lib lib; do
    [[ -e $1/$dir/$2 ]] && { echo "$1/$dir/$2"; return 0; }
  done
  return 1
}

add_armhf() {
  local libroot=${1:?usage: pi-guest.sh armhf LIBROOT BINARY...}
  shift
  [[ -e $root/.flotilla-kernel ]] ||
    { echo "pi-guest: run 'scripts/pi-guest.sh prepare' first" >&2; exit 2; }
  log "armhf libraries of $# binaries from $libroot into the guest root"
  mkdir -p "$root/usr/lib/arm-linux-gnueabihf"
  # The loader every armhf program names (PT_INTERP).
  cp -L "$libroot/lib/ld-linux-armhf.so.3" "$root/lib/ld-linux-armhf.so.3"
  local -A copied=()
  local queue=("$@") file dynamic name found
  while ((${#queue[@]})); do
    file=${queue[0]}
    queue=("${queue[@]:1}")
    dynamic=$(readelf -d "$file") || { echo "pi-guest: readelf -d $file failed" >&2; exit 1; }
    for name in $(sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' <<<"$dynamic"); do
      [[ -z ${copied[$name]:-} ]] || continue
      found=$(find_armhf_library "$libroot" "$name") ||
        { echo "pi-guest: $name (needed by $file) is not in $libroot" >&2; exit 1; }
      cp -L "$found" "$root/usr/lib/arm-linux-gnueabihf/$name"
      copied[$name]=1
      queue+=("$found")
    done
  done
}

run() {
  local job=$1
  shift
  [[ -e $root/.flotilla-kernel && -x $root/flotilla-guest-init ]] ||
    { echo "pi-guest: run 'scripts/pi-guest.sh prepare DEB' first" >&2; exit 2; }
  local work
  work=$(mktemp -d /tmp/pi-guest.XXXXXX)
  trap 'rm -rf "$work"' RETURN
  rm -rf "$root/job" && mkdir -p "$root/job"
  cp "$job" "$root/job/job.sh"
  local f
  for f in "$@"; do cp -r "$f" "$root/job/"; done
  local kernel initrd
  kernel=$(ls "$root"/boot/vmlinuz-* | sort -V | tail -1)
  initrd=$(ls "$root"/boot/initrd.img-* | sort -V | tail -1)
  # A fresh image each run: the guest's writes never reach the kept root.
  mkfs.ext4 -q -F -L flotilla -d "$root" "$work/disk.img" 2G
  timeout "${FLOTILLA_GUEST_TIMEOUT:-900}" qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 \
    -m 512 -nographic -no-reboot -kernel "$kernel" -initrd "$initrd" \
    -append "console=ttyAMA0 root=/dev/vda rw init=/flotilla-guest-init panic=-1 quiet" \
    -drive if=none,file="$work/disk.img",format=raw,id=hd -device virtio-blk-device,drive=hd \
    -netdev user,id=net -device virtio-net-device,netdev=net </dev/null \
    | tr -d '\r' | tee "$work/console.log"
  local code
  code=$(sed -n 's/^FLOTILLA-GUEST-EXIT \([0-9]*\)$/\1/p' "$work/console.log" | tail -1)
  [[ -n $code ]] || { echo "pi-guest: the guest ended without the job's exit code" >&2; return 1; }
  return "$code"
}

case ${1:-} in
  prepare) shift; prepare "$@" ;;
  armhf) shift; add_armhf "$@" ;;
  run) shift; run "$@" ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 2
    ;;
esac
