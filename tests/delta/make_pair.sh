#!/usr/bin/env bash
# Builds two releases of a small app image for the delta end-to-end tests,
# with umoci + skopeo: v1 and v2 share a busybox layer shape but v2 changes
# a few lines of a large text file, renames a versioned file, drops one file
# and adds one; the app layer changes one source file.
# Usage: make_pair.sh OUTDIR  -> OUTDIR/v1.tar OUTDIR/v2.tar (docker-archive)
#                                OUTDIR/v1.ids OUTDIR/v2.ids (diff_ids, bottom first)
set -euo pipefail
out=$1
cd "$out"
build() {  # build NAME EDIT_SCRIPT
  local name=$1 edit=$2
  rm -rf "lay-$name" bundle
  umoci init --layout "lay-$name" >/dev/null
  umoci new --image "lay-$name:img" >/dev/null
  umoci unpack --image "lay-$name:img" bundle >/dev/null
  R=bundle/rootfs
  mkdir -p $R/bin $R/etc $R/usr/lib $R/usr/share/doc
  cp /usr/bin/busybox $R/bin/
  ln -s busybox $R/bin/sh
  seq 1 40000 | sed 's/^/line number /' > $R/usr/share/doc/big.txt
  head -c 300000 /usr/bin/busybox > $R/usr/lib/libdemo.so.1.2.3
  echo "root:x:0:0:root:/root:/bin/sh" > $R/etc/passwd
  echo "remove me" > $R/etc/old.conf
  eval "$edit"
  umoci repack --image "lay-$name:img" bundle >/dev/null
  rm -rf bundle
  umoci unpack --image "lay-$name:img" bundle >/dev/null
  mkdir -p $R/app
  for i in 1 2 3 4 5; do seq 1 2000 | sed "s/^/source $i: /" > $R/app/mod$i.py; done
  if [[ $name == v2 ]]; then echo "print('v2')" >> $R/app/mod3.py; fi
  umoci repack --image "lay-$name:img" bundle >/dev/null
  rm -rf bundle
  skopeo copy --quiet "oci:lay-$name:img" "docker-archive:$name.tar:demo/app:$name"
  python3 - "lay-$name" > "$name.ids" <<'PY'
import json, sys
lay = sys.argv[1]
blob = lambda d: json.load(open(f"{lay}/blobs/sha256/{d.split(':')[1]}"))
index = json.load(open(f"{lay}/index.json"))
manifest = blob(index["manifests"][0]["digest"])
for diff_id in blob(manifest["config"]["digest"])["rootfs"]["diff_ids"]:
    print(diff_id)
PY
}
build v1 ''
build v2 'sed -i "s/^line number 2000$/line number 2000 changed/; s/^line number 30000$/changed too/" $R/usr/share/doc/big.txt;
          mv $R/usr/lib/libdemo.so.1.2.3 $R/usr/lib/libdemo.so.1.2.4; printf "patched" | dd of=$R/usr/lib/libdemo.so.1.2.4 bs=1 seek=1000 conv=notrunc 2>/dev/null;
          rm $R/etc/old.conf; echo "new = 1" > $R/etc/new.conf'
