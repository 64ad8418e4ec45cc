#!/usr/bin/env bash
# Builds the third-party test images for the layer store's end-to-end tests:
# a busybox-static rootfs made into an OCI layout by umoci, one layer per
# step (whiteouts, a hardlink, a fifo, a changed file), then converted by
# skopeo into a docker-archive (the `docker save` format) and an oci-archive.
# Usage: make_image.sh OUTDIR [big]   ("big" adds a layer of 3000 files + 16 MiB)
# Produces OUTDIR/oci (layout, ref "img" and a two-platform index "multi"),
# OUTDIR/docker.tar, OUTDIR/oci.tar.
set -euo pipefail
out=$1
big=${2:-}
cd "$out"
umoci init --layout oci
umoci new --image oci:img
step() {
  rm -rf bundle
  umoci unpack --image oci:img bundle >/dev/null
  R=bundle/rootfs
  eval "$1"
  umoci repack --image oci:img bundle
}
step 'mkdir -p $R/bin $R/etc $R/data/old $R/opq; cp /usr/bin/busybox $R/bin/;
      ln -s busybox $R/bin/sh; echo hello > $R/etc/motd; echo gone > $R/data/old/a;
      echo gone2 > $R/data/rmme; echo keep > $R/data/keep; echo o1 > $R/opq/o1'
step 'rm -rf $R/data/old $R/data/rmme $R/opq/o1; echo o2 > $R/opq/o2;
      echo linked > $R/data/l1; ln $R/data/l1 $R/data/l2'
step 'echo v2 > $R/etc/motd; mkfifo $R/data/fifo'
if [[ $big == big ]]; then
  step 'mkdir $R/many; for i in $(seq 3000); do echo "file $i" > $R/many/f$i; done;
        head -c 16M /dev/urandom > $R/random.bin'
fi
umoci config --image oci:img --config.cmd /bin/sh
rm -rf bundle
skopeo copy --quiet oci:oci:img docker-archive:docker.tar:test/img:1
skopeo copy --quiet oci:oci:img oci-archive:oci.tar:img
# A two-platform index: the same layers under an amd64 and an arm64 config.
umoci config --image oci:img --architecture arm64 --tag img-arm64
python3 - <<'PY'
import hashlib, json, os
index = json.load(open("oci/index.json"))
by_ref = {m["annotations"]["org.opencontainers.image.ref.name"]: m for m in index["manifests"]}
entries = []
for ref, arch in (("img", "amd64"), ("img-arm64", "arm64")):
    d = dict(by_ref[ref]); d.pop("annotations")
    d["platform"] = {"os": "linux", "architecture": arch}
    entries.append(d)
blob = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                   "manifests": entries}).encode()
digest = hashlib.sha256(blob).hexdigest()
open("oci/blobs/sha256/" + digest, "wb").write(blob)
index["manifests"].append({"mediaType": "application/vnd.oci.image.index.v1+json",
                           "digest": "sha256:" + digest, "size": len(blob),
                           "annotations": {"org.opencontainers.image.ref.name": "multi"}})
json.dump(index, open("oci/index.json", "w"))
PY
