# Sourced by scripts/cross.sh and scripts/pi-guest.sh (bash): Debian root
# filesystems of other architectures. Uses $mirror and $suite.

# A debootstrap'd root filesystem of ARCH in DIR (first stage on the host,
# second stage under qemu-user), kept between runs. Extra packages are
# installed inside it with its own apt.
make_rootfs() {
  local arch=$1 dir=$2
  shift 2
  if [[ ! -e $dir/.flotilla-bootstrapped ]]; then
    rm -rf "$dir"
    debootstrap --arch="$arch" --foreign --variant=minbase "$suite" "$dir" "$mirror" >/dev/null
    chroot "$dir" /debootstrap/debootstrap --second-stage >/dev/null
    cat >"$dir/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb http://deb.debian.org/debian-security $suite-security main
EOF
    touch "$dir/.flotilla-bootstrapped"
  fi
  if (($#)); then
    # A security index that fails to download leaves the suite's older
    # versions: consistent within the root, which is all a sysroot needs.
    chroot "$dir" apt-get update -qq >/dev/null 2>&1 || true
    chroot "$dir" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends "$@" >/dev/null
  fi
}
