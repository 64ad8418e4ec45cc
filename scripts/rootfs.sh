# Sourced by scripts/cross.sh, scripts/pi-guest.sh and bench/delta-corpus
# (bash): Debian root filesystems of other architectures, from the package
# mirror this machine's apt already uses. make_rootfs uses $mirror,
# $security_mirror and $suite.

# apt_mirror [security]: the URI this machine's apt sources give for
# Debian's main archive (a suite without "-": bookworm, stable), or with
# `security` for the security archive (a suite ending in "-security"). Reads
# deb822 /etc/apt/sources.list.d/*.sources, then one-line sources.list and
# sources.list.d/*.list; prints nothing when no source matches.
apt_mirror() {
  local want=${1:-main} f
  {
    for f in /etc/apt/sources.list.d/*.sources; do
      [[ -f $f ]] || continue
      # One "SUITE URI" line per pair of a deb stanza (blank lines end a stanza).
      awk 'function flush() { if (deb && enabled) for (s in suites) for (u in uris) print suites[s], uris[u];
                               deb = 0; enabled = 1; split("", suites); split("", uris) }
           BEGIN { enabled = 1 }
           /^[ \t]*#/ { next }
           /^[ \t]*$/ { flush(); next }
           tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
           tolower($1) == "uris:" { for (i = 2; i <= NF; i++) uris[i] = $i }
           tolower($1) == "suites:" { for (i = 2; i <= NF; i++) suites[i] = $i }
           tolower($1) == "enabled:" { enabled = (tolower($2) != "no") }
           END { flush() }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      [[ -f $f ]] || continue
      sed -E -n 's/^[ \t]*deb[ \t]+(\[[^]]*\][ \t]+)?([^ \t]+)[ \t]+([^ \t]+).*/\3 \2/p' "$f"
    done
  } | awk -v want="$want" '$2 ~ /^(https?|ftp):/ &&
        ((want == "security" && $1 ~ /-security$/) || (want != "security" && $1 !~ /-/)) {
          sub(/\/+$/, "", $2); print $2; exit }'
}

# Sets $mirror and $security_mirror from this machine's apt sources unless
# already set (FLOTILLA_DEBIAN_MIRROR, FLOTILLA_DEBIAN_SECURITY_MIRROR
# override them); exits with a message when there is no Debian source.
find_mirrors() {
  mirror=${FLOTILLA_DEBIAN_MIRROR:-$(apt_mirror)}
  security_mirror=${FLOTILLA_DEBIAN_SECURITY_MIRROR:-$(apt_mirror security)}
  if [[ -z $mirror ]]; then
    echo "no Debian archive in this machine's apt sources (/etc/apt/sources.list.d/*.sources," \
      "/etc/apt/sources.list): add one, or set FLOTILLA_DEBIAN_MIRROR to a mirror's URI" >&2
    exit 1
  fi
}

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
    {
      echo "deb $mirror $suite main"
      echo "deb $mirror $suite-updates main"
      [[ -z $security_mirror ]] || echo "deb $security_mirror $suite-security main"
    } >"$dir/etc/apt/sources.list"
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
