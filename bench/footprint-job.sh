#!/bin/sh
# bench/footprint's measurement, the same on the amd64 host and inside the
# arm64 guest (scripts/pi-guest.sh run): starts `flotilla-node run` as a
# device that follows app "kiosk", waits until it has fetched release 1,
# rebuilt and verified every layer, and prints the kernel's figures for the
# node's process (VmHWM: peak resident set; VmRSS: now, split into RssAnon,
# the heap and stacks, and RssFile, mapped code and libraries), in one line:
#   FLOTILLA-RSS arch=aarch64 fetched=1 seconds=18 vmhwm_kb=24984 vmrss_kb=21320 rssanon_kb=9000 rssfile_kb=12000
# Reads, from the current directory: root.json (the tracker's 1.root.json),
# fleet-token, tracker-url. Env: NODE (default flotilla-node), DATA (the
# node's data directory, default /var/lib/flotilla-footprint), LIMIT_S (600).
set -u
node=${NODE:-flotilla-node}
data=${DATA:-/var/lib/flotilla-footprint}
limit=${LIMIT_S:-600}
here=$(pwd)
rm -rf "$data"
mkdir -p "$data"
cat >"$here/footprint-node.json" <<EOF
{"tracker_url": "$(cat "$here/tracker-url")", "enrolment_token_file": "$here/fleet-token",
 "device_name": "footprint-$(uname -m)", "data_dir": "$data",
 "root_of_trust": "$here/root.json", "apps": ["kiosk"], "listen": "0.0.0.0:0",
 "transfer_mode": "p2p", "refresh_interval_s": 2, "report_interval_s": 5, "deploy": false,
 "lan": {"enabled": false}}
EOF
"$node" run --config "$here/footprint-node.json" >"$here/footprint-node.log" 2>&1 &
pid=$!
fetched=0
waited=0
while [ "$waited" -lt "$limit" ]; do
  if grep -q "release 1 fetched" "$here/footprint-node.log"; then
    fetched=1
    break
  fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 1
  waited=$((waited + 1))
done
sleep 2 # the daemon settles after the verify; the peak is kept anyway
field() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$pid/status" 2>/dev/null; }
hwm=$(field VmHWM)
rss=$(field VmRSS)
anon=$(field RssAnon)
file=$(field RssFile)
echo "FLOTILLA-RSS arch=$(uname -m) fetched=$fetched seconds=$waited vmhwm_kb=${hwm:-0} vmrss_kb=${rss:-0} rssanon_kb=${anon:-0} rssfile_kb=${file:-0}"
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
[ "$fetched" = 1 ] || { tail -20 "$here/footprint-node.log"; exit 1; }
exit 0
