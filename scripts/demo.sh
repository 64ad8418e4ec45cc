#!/usr/bin/env bash
# Installs what is needed, builds flotilla and runs the demo on an embedded
# default: a tracker and three devices on this machine, a kiosk app published,
# fetched peer-to-peer, verified and run; then a second release that travels
# as a delta and replaces the first behind a health check.
#
#  1. Build two releases of a busybox-static image the way people do (umoci,
#     then skopeo to an oci-archive): release 2 changes a little in each layer.
#  2. flotilla-tracker: init (keys, signed TUF metadata), publish release 1
#     (zstd artifacts + v2 torrents), serve it on loopback (tracker + origin).
#  3. Three `flotilla-node run` daemons (127.0.0.2-4), each trusting only the
#     root of trust: they enrol, refresh the signed metadata, fetch the layers
#     from each other first and from the origin last, verify every byte,
#     unpack, and run the app in the built-in runtime (namespaces, overlayfs,
#     cgroups, seccomp), health-gated.
#  4. Publish release 2: the tracker computes deltas from release 1; the
#     nodes fetch only those, rebuild the layers, check them against the
#     signed digests and switch the app; release 1 is kept for rollback.
# BUILD=dir uses an existing build directory instead of building build/.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z ${BUILD:-} ]]; then
  bash scripts/setup.sh
  bash scripts/build.sh
  BUILD=build
fi
tracker=$PWD/$BUILD/tracker/flotilla-tracker
node=$PWD/$BUILD/node/flotilla-node
nodes=(kiosk-a kiosk-b kiosk-c)

work=$(mktemp -d /tmp/flotilla-demo.XXXXXX)
server_pid=
node_pids=()
cleanup() {
  for pid in "${node_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${node_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  # The apps outlive their node by design (KillMode=process): stop them.
  for n in "${nodes[@]}"; do
    "$node" app stop --state-dir "$work/$n/data/runtime" kiosk >/dev/null 2>&1 || true
  done
  [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
step() { printf '\n\033[1m== %s ==\033[0m\n' "$*"; }
status_json() { "$node" status --socket "$work/$1/data/control.sock" --json 2>/dev/null; }
# Waits until every node runs release $1 (at most $2 seconds).
wait_running() {
  local deadline=$((SECONDS + $2)) n
  for n in "${nodes[@]}"; do
    until status_json "$n" | python3 -c \
      'import json,sys; a=json.load(sys.stdin)["apps"][0]; sys.exit(a["running_release"]!='"$1"')' \
      2>/dev/null; do
      if ((SECONDS > deadline)); then
        echo "$n did not run release $1 in $2 s; its log:" >&2
        tail -20 "$work/$n/node.log" >&2
        exit 1
      fi
      sleep 0.5
    done
  done
}
# Who got how many bytes from whom, and what runs where.
table() {
  printf '%-8s %-8s %-9s %-12s %14s %14s  %s\n' node release previous container \
    "from peers" "from origin" "app says"
  for n in "${nodes[@]}"; do
    local says
    says=$("$node" logs kiosk --socket "$work/$n/data/control.sock" 2>/dev/null | tail -1)
    status_json "$n" | python3 -c '
import json, sys
a = json.load(sys.stdin)["apps"][0]
print("%-8s %-8s %-9s %-12s %14s %14s  %s" % (sys.argv[1], a["running_release"],
      a["previous_release"] or "-", a["container_state"], format(a["bytes_from_peers"], ","),
      format(a["bytes_from_origin"], ","), sys.argv[2]))' "$n" "$says"
  done
}
origin_bytes() {
  curl -sf "http://127.0.0.1:$(cat "$work/port")/metrics" |
    awk '/^flotilla_artifact_bytes_served_total/ {s += $2} END {printf "%d", s}'
}

step "1. Build two releases of a busybox image with umoci and skopeo"
mkdir -p "$work/images"
bash sim/scenarios/images/make.sh "$work/images" >/dev/null
ls -l "$work/images"

step "2. Tracker: init a repository, publish release 1 of app 'kiosk', serve it"
"$tracker" init "$work/repo" --public-url http://127.0.0.1:1 >/dev/null
cat >"$work/kiosk.json" <<'SPEC'
{"name": "kiosk",
 "command": ["/bin/sh", "-c", "echo kiosk shows version $(cat /app/VERSION); exec sleep 1000000"],
 "health": {"type": "running", "seconds": 1},
 "restart": {"policy": "always"}}
SPEC
"$tracker" publish --repository "$work/repo" --app kiosk --spec "$work/kiosk.json" \
  "$work/images/busybox-v1.oci.tar"
(umask 077 && echo "fleet-token-for-the-demo-0123456789" >"$work/fleet-token")
"$tracker" serve --repository "$work/repo" --listen 127.0.0.1:0 --port-file "$work/port" \
  --fleet-token-file "$work/fleet-token" --log-level warn &
server_pid=$!
for _ in $(seq 50); do [[ -s $work/port ]] && break; sleep 0.1; done
url=http://127.0.0.1:$(cat "$work/port")
echo "tracker and origin on $url"

step "3. Three devices: trust only root.json, fetch from each other, verify, run"
i=2
for n in "${nodes[@]}"; do
  mkdir -p "$work/$n"
  cat >"$work/$n/node.json" <<JSON
{"tracker_url": "$url", "enrolment_token_file": "$work/fleet-token",
 "device_name": "$n", "data_dir": "$work/$n/data",
 "root_of_trust": "$work/repo/metadata/1.root.json", "apps": ["kiosk"],
 "site": "demo-shop", "listen": "127.0.0.$i:0", "transfer_mode": "p2p",
 "refresh_interval_s": 2, "report_interval_s": 1, "lan": {"enabled": false}}
JSON
  "$node" run --config "$work/$n/node.json" >"$work/$n/node.log" 2>&1 &
  node_pids+=($!)
  i=$((i + 1))
  # A head start for the first device, so the others can take from it.
  [[ $n == kiosk-a ]] && sleep 3
done
wait_running 1 120
table
echo "release 1 is $(python3 - "$work/repo" <<'PY'
import json, sys
targets = json.load(open(sys.argv[1] + "/metadata/targets.json"))["signed"]["targets"]
release = targets["apps/kiosk/release-1.json"]["custom"]["flotilla"]
print(format(sum(a["length"] for a in release["artifacts"]), ","), end="")
PY
) bytes of artifacts; the origin served $(origin_bytes) bytes to 3 devices, peers the rest"

step "4. Release 2: deltas from release 1, fetched, verified, switched behind a health check"
"$tracker" publish --repository "$work/repo" --app kiosk --spec "$work/kiosk.json" \
  "$work/images/busybox-v2.oci.tar"
python3 - "$work/repo" <<'PY'
import json, sys
targets = json.load(open(sys.argv[1] + "/metadata/targets.json"))["signed"]["targets"]
release = targets["apps/kiosk/release-2.json"]["custom"]["flotilla"]
for a in release["artifacts"]:
    print("  %-5s artifact for layer %s...: %9s bytes" % (a["kind"], a["layer"][7:19],
          format(a["length"], ",")))
PY
before=$(origin_bytes)
wait_running 2 120
table
echo "the origin served $(($(origin_bytes) - before)) bytes for release 2 to 3 devices"
"$node" status --socket "$work/kiosk-b/data/control.sock"

step "Done"
echo "Every byte was checked against signed digests before use; the devices took"
echo "from each other before the origin; release 2 travelled as deltas and replaced"
echo "release 1 only once healthy; release 1 is kept for 'flotilla-node rollback kiosk'."
