#!/usr/bin/env bash
# Builds an OCI image that flotilla-tracker publish takes from a root
# filesystem directory (docs/publish.md, "An image from a directory"): one
# layer holding the whole tree (without /dev's contents, which the runtime
# provides), written as an oci-archive with umoci and skopeo (Debian's).
#
# Usage: image-from-dir.sh ROOTFS OUT.tar [ARCH]
#   ROOTFS  the directory that becomes / in the container (owners, modes,
#           links and xattrs are kept: run as root for files root owns)
#   OUT.tar the oci-archive to write (ref "img")
#   ARCH    the image's architecture as OCI names it (amd64, arm64, arm);
#           default: this machine's. A node runs only images of its platform;
#           "arm" has no variant, which nodes take as v7 (umoci writes none).
set -euo pipefail

usage() { sed -n '2,15s/^# \{0,1\}//p' "$0"; }
if [[ ${1:-} == -h || ${1:-} == --help ]]; then usage; exit 0; fi
if [[ $# -lt 2 || $# -gt 3 ]]; then usage >&2; exit 2; fi
rootfs=$1 out=$2 arch=${3:-}
[[ -d $rootfs ]] || { echo "image-from-dir: $rootfs is not a directory" >&2; exit 2; }
for tool in umoci skopeo; do
  command -v "$tool" >/dev/null || { echo "image-from-dir: $tool is not installed (apt-get install $tool)" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/image-from-dir.XXXXXX")
trap 'rm -rf "$work"' EXIT
umoci init --layout "$work/oci"
umoci new --image "$work/oci:img"
umoci unpack --image "$work/oci:img" "$work/bundle" >/dev/null
rm -rf "$work/bundle/rootfs"
cp -a "$rootfs" "$work/bundle/rootfs"
[[ -d $work/bundle/rootfs/dev ]] && find "$work/bundle/rootfs/dev" -mindepth 1 -delete
umoci repack --image "$work/oci:img" "$work/bundle"
if [[ -n $arch ]]; then
  if [[ $arch == */* ]]; then
    echo "image-from-dir: umoci writes no variant; give the architecture alone (arm is v7)" >&2
    exit 2
  fi
  umoci config --image "$work/oci:img" --os linux --architecture "$arch"
fi
rm -f "$out"
skopeo copy --quiet "oci:$work/oci:img" "oci-archive:$out:img"
echo "$out"
