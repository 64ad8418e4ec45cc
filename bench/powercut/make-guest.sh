#!/usr/bin/env bash
# Builds the power-cut guest (docs/durability.md, "The harness"): Debian 12's
# amd64 kernel, and an initramfs holding busybox, the kernel modules the
# guest needs (virtio disk, network and rng, ext4, overlayfs), flotilla-node,
# flotilla-node-full with every library it links, flotilla-monitor, and
# guest-init.sh as /init. The node's configuration is not in it: the
# harness appends a second cpio archive with /etc/flotilla per run.
#
#   bench/powercut/make-guest.sh BUILD_DIR OUT_DIR
# writes OUT_DIR/vmlinux and OUT_DIR/base.cpio. The kernel package is fetched
# once with apt-get download into /var/cache/flotilla-powercut. vmlinux is the
# kernel taken out of its xz-compressed bzImage: qemu boots it through its
# PVH entry point, without firmware or the decompressor (20 s less per boot
# under TCG on a loaded machine).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(realpath "$1")
out=$(realpath -m "$2")
cache=/var/cache/flotilla-powercut
modules=(virtio_pci virtio_blk virtio_net virtio-rng crc32c_generic ext4 overlay)
mkdir -p "$cache" "$out"

# ---- the kernel: Debian's, as on any amd64 Debian 12 machine ---------------
kernel_package=$(apt-cache depends linux-image-amd64 2>/dev/null |
  awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[[ -n $kernel_package ]] || { echo "make-guest: apt knows no linux-image-amd64 (apt-get update?)" >&2; exit 1; }
kdir=$cache/$kernel_package
if [[ ! -e $kdir/.extracted ]]; then
  (cd "$cache" && apt-get download "$kernel_package" >/dev/null 2>&1)
  rm -rf "$kdir" && mkdir -p "$kdir"
  dpkg-deb -x "$cache/${kernel_package}"_*.deb "$kdir"
  touch "$kdir/.extracted"
fi
kver=${kernel_package#linux-image-}
python3 - "$kdir/boot/vmlinuz-$kver" "$out/vmlinux" <<'PY'
import lzma, sys
image = open(sys.argv[1], "rb").read()
start = image.find(b"\xfd7zXZ\x00")
kernel = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(image[start:])
assert start > 0 and kernel[:4] == b"\x7fELF", "no xz-compressed ELF kernel in the bzImage"
open(sys.argv[2], "wb").write(kernel)
PY

# ---- the root filesystem -----------------------------------------------------
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,usr/bin,usr/lib/powercut,etc,newroot,proc,lib/modules/"$kver"}
cp /usr/bin/busybox "$root/bin/busybox"
for applet in $(busybox --list); do
  [[ -e $root/bin/$applet ]] || ln -s busybox "$root/bin/$applet"
done
install -m 0755 "$here/guest-init.sh" "$root/init"
install -m 0755 "$here/guest-check.sh" "$root/usr/lib/powercut/guest-check.sh"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"

for program in node/flotilla-node node/flotilla-node-full runtime/flotilla-monitor; do
  strip -o "$root/usr/bin/${program##*/}" "$build/$program"
done
# Every library flotilla-node-full links, at the path the loader looks in.
ldd "$build/node/flotilla-node-full" | grep -o '/[^ ]*' | sort -u | while read -r lib; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done

# Modules with their dependencies (modules.dep, resolved by busybox modprobe
# in the guest); load-order lists each wanted module's path after its deps.
mdir=$kdir/lib/modules/$kver
[[ -e $mdir/modules.dep ]] || depmod -b "$kdir" "$kver"
: >"$root/lib/modules/load-order"
for m in "${modules[@]}"; do
  line=$(grep -E "/$m\.ko:" "$mdir/modules.dep") || { echo "make-guest: no module $m" >&2; exit 1; }
  path=${line%%:*}
  deps=(${line#*:})
  for ((i = ${#deps[@]} - 1; i >= 0; i--)); do
    grep -qx "$kver/${deps[i]}" "$root/lib/modules/load-order" ||
      echo "$kver/${deps[i]}" >>"$root/lib/modules/load-order"
  done
  grep -qx "$kver/$path" "$root/lib/modules/load-order" || echo "$kver/$path" >>"$root/lib/modules/load-order"
done
while read -r module; do
  mkdir -p "$root/lib/modules/$(dirname "$module")"
  cp "$kdir/lib/modules/$module" "$root/lib/modules/$module"
done <"$root/lib/modules/load-order"

(cd "$root" && find . | busybox cpio -o -H newc 2>/dev/null) >"$out/base.cpio"
echo "make-guest: $out/vmlinux ($kver), $out/base.cpio ($(du -m "$out/base.cpio" | cut -f1) MiB)"
