#!/usr/bin/env bash
# The agent's self-update on arm64, in the qemu-system-aarch64 guest of the
# Pi work (scripts/pi-guest.sh; docs/agent-update.md, "On arm64"): the arm64
# flotilla-node .deb installed in the guest is the packaged agent; the host's
# tracker publishes the arm64 build's binaries as release 1 of
# flotilla-agent-arm64; in the guest the packaged agent fetches that release
# over qemu's user network, installs it, self-checks it (it runs here) and
# exits 3; the unit starts again through the launcher, which runs release 1
# on probation, and the check confirms it.
#
# The guest has no systemd (its PID 1 runs one job and powers off: each
# boot stays short under TCG), so the job plays the unit as the test
# command's agent tests do: it runs the unit's ExecStart= again 5 s after a
# failure (Restart=on-failure, RestartSec=5s) and the check every 10 s while
# agent/on-probation exists (the timer and its ConditionPathExists=).
#
# Needs the arm64 build and package of `bash scripts/cross.sh arm64`
# (build-arm64/, build-debs/) and the host's build for the tracker
# (BUILD, default build). Not part of the test command (minutes under TCG).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
arm=${FLOTILLA_ARM64_BUILD:-build-arm64}

log() { printf '== agent-pi-guest: %s\n' "$*" >&2; }
die() {
  log "$*"
  exit 1
}

deb=$(ls -t build-debs/flotilla-node_*_arm64.deb 2>/dev/null | head -1 || true)
[[ -n $deb ]] || die "no build-debs/flotilla-node_*_arm64.deb: run bash scripts/cross.sh arm64 first"
for b in node/flotilla-node node/flotilla-node-full runtime/flotilla-monitor; do
  [[ -x $arm/$b ]] || die "no $arm/$b: run bash scripts/cross.sh arm64 first"
done
[[ -x $BUILD/tracker/flotilla-tracker ]] || die "no $BUILD/tracker/flotilla-tracker: bash scripts/build.sh"
command -v aarch64-linux-gnu-strip >/dev/null || die "aarch64-linux-gnu-strip missing (binutils-aarch64-linux-gnu)"

work=$(mktemp -d /tmp/agent-pi-guest.XXXXXX)
tracker_pid=
cleanup() {
  [[ -z $tracker_pid ]] || kill "$tracker_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

log "tracker on the host's loopback (the guest reaches it as 10.0.2.2)"
tracker=$BUILD/tracker/flotilla-tracker
"$tracker" init "$work/repo" --public-url http://127.0.0.1:1 >/dev/null
(umask 077 && echo "fleet-token-for-the-arm64-guest-0123456789" >"$work/fleet-token")
"$tracker" serve --repository "$work/repo" --listen 127.0.0.1:0 --port-file "$work/port" \
  --fleet-token-file "$work/fleet-token" --log-level warn >"$work/tracker.log" 2>&1 &
tracker_pid=$!
for _ in $(seq 50); do [[ -s $work/port ]] && break; sleep 0.1; done
[[ -s $work/port ]] || die "the tracker did not start: $(tail -5 "$work/tracker.log")"

log "flotilla-tracker agent publish --arch arm64: the arm64 build, stripped, as release 1"
mkdir -p "$work/agent-src"
aarch64-linux-gnu-strip --strip-debug -o "$work/agent-src/flotilla-node" "$arm/node/flotilla-node"
aarch64-linux-gnu-strip --strip-debug -o "$work/agent-src/flotilla-node-full" \
  "$arm/node/flotilla-node-full"
aarch64-linux-gnu-strip --strip-debug -o "$work/agent-src/flotilla-monitor" \
  "$arm/runtime/flotilla-monitor"
"$tracker" agent publish --repository "$work/repo" --arch arm64 "$work/agent-src" | tail -1

mkdir -p "$work/job"
cp "$work/repo/metadata/1.root.json" "$work/job/root.json"
cp "$work/fleet-token" "$work/job/fleet-token"
cat >"$work/job/node.json" <<JSON
{"tracker_url": "http://10.0.2.2:$(cat "$work/port")",
 "enrolment_token_file": "/etc/flotilla/fleet-token", "device_name": "pi-guest",
 "data_dir": "/var/lib/flotilla", "root_of_trust": "/etc/flotilla/root.json",
 "apps": ["kiosk"], "deploy": false, "transfer_mode": "http-only", "agent_update": true,
 "refresh_interval_s": 5, "lan": {"enabled": false}}
JSON
cat >"$work/job.sh" <<'JOB'
#!/bin/sh
# In the arm64 guest: play flotilla-node.service and its check's timer.
mkdir -p /etc/flotilla /var/log
cp /job/node.json /job/root.json /etc/flotilla/
install -m 0600 /job/fleet-token /etc/flotilla/fleet-token
echo "packaged: $(flotilla-node --version) ($(uname -m))"
(
  while :; do
    echo "unit: start"
    flotilla-node agent launch --data-dir /var/lib/flotilla -- run --config /etc/flotilla/node.json \
      >>/var/log/flotilla-node.log 2>&1
    rc=$?
    echo "unit: main process exited with status $rc"
    [ "$rc" = 0 ] || [ "$rc" = 2 ] && break
    sleep 5
  done
) &
start=$(date +%s)
confirmed=
while [ $(($(date +%s) - start)) -lt 600 ]; do
  sleep 10
  [ -e /var/lib/flotilla/agent/on-probation ] &&
    flotilla-node agent check --data-dir /var/lib/flotilla
  if flotilla-node agent status --data-dir /var/lib/flotilla | grep -q '^confirmed: release 1$'; then
    confirmed=yes
    break
  fi
done
echo "after $(($(date +%s) - start)) s:"
flotilla-node agent status --data-dir /var/lib/flotilla
pid=$(pgrep -f 'flotilla-node-full run --config /etc/flotilla/node.json' | head -1)
echo "running agent: pid $pid, $(readlink /proc/$pid/exe)"
echo "flotilla-node status:"
flotilla-node status --socket /var/lib/flotilla/control.sock 2>&1 | head -8
echo "its log (agent lines):"
grep -E 'agent' /var/log/flotilla-node.log | tail -8
[ -n "$confirmed" ] && readlink /proc/$pid/exe | grep -q '/agent/releases/1/flotilla-node-full$'
JOB

log "guest root with $(basename "$deb") (scripts/pi-guest.sh prepare)"
bash scripts/pi-guest.sh prepare "$deb"
log "boot the guest (qemu-system-aarch64, TCG): the agent updates itself"
status=0
FLOTILLA_GUEST_TIMEOUT=${FLOTILLA_GUEST_TIMEOUT:-900} bash scripts/pi-guest.sh run "$work/job.sh" \
  "$work/job/node.json" "$work/job/root.json" "$work/job/fleet-token" >"$work/console.log" 2>&1 ||
  status=$?
grep -v '^\[' "$work/console.log" || true
if ((status == 0)); then
  log "passed: the arm64 agent installed release 1, restarted into it and confirmed it"
else
  log "failed (status $status): the guest's console is above"
fi
exit "$status"
