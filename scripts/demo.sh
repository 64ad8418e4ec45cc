#!/usr/bin/env bash
# Installs what is needed, builds flotilla and runs the demo on embedded
# defaults. What the demo shows grows with the product; today: the signing
# and content-addressing ground every release stands on.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh

work=$(mktemp -d /tmp/flotilla-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
tracker=build/tracker/flotilla-tracker
node=build/node/flotilla-node

echo
echo "== 1. The release signer makes an Ed25519 key (seed only, mode 0600) =="
$tracker keygen "$work/keys/targets"
ls -l "$work/keys"

echo
echo "== 2. A layer is named by its SHA-256 digest, as OCI and BitTorrent v2 name it =="
head -c 4194304 /dev/urandom >"$work/layer.tar"
$node digest "$work/layer.tar"
echo "(sha256sum agrees: $(sha256sum "$work/layer.tar" | cut -c1-16)...)"

echo
echo "demo finished: the end-to-end path (publish -> fetch from peers -> run) is being built;"
echo "see README.md for what works today."
