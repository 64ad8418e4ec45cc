#!/usr/bin/env bash
# The power-cut and SD-write benches' app images, as oci-archive tarballs in
# OUT_DIR: kiosk-v1.oci.tar, kiosk-v2.oci.tar, kiosk-v3.oci.tar. Each has
# three layers:
#   base    busybox-static and its links (the same layer in every version)
#   assets  ASSETS_MIB MiB of incompressible media (AES-CTR keystream); each
#           version patches 64 KiB of it in place
#   app     APP_FILES text modules and /app/VERSION; each version edits 10
#           modules and adds one
# so every upgrade changes two layers a little: a full install moves the
# whole image, a delta upgrade a few hundred KiB.
#   bench/powercut/make-images.sh OUT_DIR [ASSETS_MIB] [APP_FILES]
# Needs umoci and skopeo (scripts/setup.sh).
set -euo pipefail
out=$(realpath -m "$1")
assets_mib=${2:-8}
app_files=${3:-200}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

prng() { # SEED BYTES
  head -c "$2" /dev/zero | openssl enc -aes-128-ctr -nosalt -K "$(printf '%032x' "$1")" \
    -iv 00000000000000000000000000000000
}
layer() { # TAG SCRIPT: one more layer on TAG, made by SCRIPT in $R
  rm -rf bundle
  umoci unpack --image "oci:$1" bundle >/dev/null
  R=bundle/rootfs
  eval "$2"
  umoci repack --image "oci:$1" bundle >/dev/null
}
assets() { # VERSION: media with 64 KiB patched per version after the first
  local v
  mkdir -p "$R/assets"
  prng 1 $((assets_mib << 20)) >"$R/assets/media.bin"
  for ((v = 2; v <= $1; v++)); do
    prng $((70 + v)) 65536 | dd of="$R/assets/media.bin" bs=65536 seek=$((v * 7)) conv=notrunc \
      status=none
  done
}
app() { # VERSION: modules, 10 edited and 1 added per version after the first
  local i v
  mkdir -p "$R/app"
  for ((i = 1; i <= app_files; i++)); do
    { echo "# module $i"; prng $((1000 + i)) 1536 | base64 -w 76; } >"$R/app/mod$i.txt"
  done
  for ((v = 2; v <= $1; v++)); do
    for ((i = v; i <= app_files; i += app_files / 10)); do echo "# changed in v$v" >>"$R/app/mod$i.txt"; done
    { echo "# new in v$v"; prng $((4000 + v)) 4096 | base64 -w 76; } >"$R/app/new$v.txt"
  done
  echo "$1" >"$R/app/VERSION"
}

umoci init --layout oci >/dev/null
umoci new --image oci:base
layer base 'mkdir -p $R/bin $R/etc $R/tmp; cp /usr/bin/busybox $R/bin/;
            for a in sh sleep true cat echo date; do ln -s busybox $R/bin/$a; done;
            echo kiosk > $R/etc/hostname'
for v in 1 2 3; do
  umoci tag --image oci:base "v$v"
  layer "v$v" "assets $v"
  layer "v$v" "app $v"
  umoci config --image "oci:v$v" --config.cmd /bin/sleep --config.cmd 1000000 >/dev/null
  skopeo copy --quiet "oci:oci:v$v" "oci-archive:$out/kiosk-v$v.oci.tar.tmp:v$v"
  mv "$out/kiosk-v$v.oci.tar.tmp" "$out/kiosk-v$v.oci.tar"
done
