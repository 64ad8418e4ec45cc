#!/usr/bin/env bash
# Builds the scenario images into OUTDIR (default: this directory):
#   busybox-v1.oci.tar  busybox-static, 3 MiB of incompressible assets, an app
#                       layer of 200 small text files
#   busybox-v2.oci.tar  both layers rebuilt: the assets with 64 KiB patched in
#                       place, the app with 10 files edited and 1 added: a
#                       routine update where every layer changed a little, so
#                       a full download costs the whole image and a delta little
# Content is generated from fixed seeds, so every build has the same bytes
# inside the files (layer digests still differ between builds: mtimes).
# Needs umoci and skopeo (scripts/setup.sh installs them).
set -euo pipefail
out=$(realpath "${1:-$(dirname "$0")}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

# Deterministic pseudo-random bytes: AES-CTR keystream of a fixed key.
prng() { # SEED BYTES
  head -c "$2" /dev/zero | openssl enc -aes-128-ctr -nosalt -K "$(printf '%032x' "$1")" \
    -iv 00000000000000000000000000000000
}

umoci init --layout oci >/dev/null
umoci new --image oci:v1
step() { # TAG SCRIPT
  rm -rf bundle
  umoci unpack --image "oci:$1" bundle >/dev/null
  R=bundle/rootfs
  eval "$2"
  umoci repack --image "oci:$1" bundle >/dev/null
}
step v1 'mkdir -p $R/bin $R/etc $R/assets $R/tmp; cp /usr/bin/busybox $R/bin/; ln -s busybox $R/bin/sh;
         for a in sleep true cat echo; do ln -s busybox $R/bin/$a; done;
         prng 1 3145728 > $R/assets/media.bin; echo sim > $R/etc/hostname'
umoci new --image oci:v2
step v2 'mkdir -p $R/bin $R/etc $R/assets $R/tmp; cp /usr/bin/busybox $R/bin/; ln -s busybox $R/bin/sh;
         for a in sleep true cat echo; do ln -s busybox $R/bin/$a; done;
         prng 1 3145728 > $R/assets/media.bin; echo sim > $R/etc/hostname;
         prng 77 65536 | dd of=$R/assets/media.bin bs=65536 seek=20 conv=notrunc status=none'
step v1 'mkdir -p $R/app; for i in $(seq 200); do
           { echo "# module $i"; prng $((1000 + i)) 1536 | base64 -w 76; } > $R/app/mod$i.txt; done;
         echo 1 > $R/app/VERSION'
step v2 'mkdir -p $R/app; for i in $(seq 200); do
           { echo "# module $i"; prng $((1000 + i)) 1536 | base64 -w 76; } > $R/app/mod$i.txt; done;
         for i in $(seq 5 5 50); do echo "# changed in v2" >> $R/app/mod$i.txt; done;
         { echo "# new in v2"; prng 4242 4096 | base64 -w 76; } > $R/app/mod201.txt;
         echo 2 > $R/app/VERSION'
for v in v1 v2; do
  umoci config --image oci:$v --config.cmd /bin/sleep --config.cmd 1000000 >/dev/null
done
for v in v1 v2; do
  rm -f "$out/busybox-$v.oci.tar"
  skopeo copy --quiet "oci:oci:$v" "oci-archive:$out/busybox-$v.oci.tar.tmp:$v"
  mv "$out/busybox-$v.oci.tar.tmp" "$out/busybox-$v.oci.tar"
done
ls -l "$out"/busybox-v*.oci.tar
