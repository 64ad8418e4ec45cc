#!/usr/bin/env bash
# The agent's self-update under a real systemd (docs/agent-update.md, "Under
# a real systemd"): the four cases the test command drives with a played
# systemd, here with systemd itself as PID 1 of a container booted with
# `systemd-nspawn --boot`, the flotilla-node .deb installed as on a device
# (its units, the launcher as ExecStart=, the 10 s probation timer), the
# default probation (120 s) and RestartSec=.
#
#   0. the daemon's own update: the build's binaries published on the tracker
#      as release 1 of the agent app; the running agent fetches and installs
#      it and exits 3, systemd restarts the unit into it, the check confirms;
#   1. a good agent (the build's own binaries installed as release 6):
#      confirmed by the timer's check within probation, runs on;
#   2. an agent that exits at start, 3. one that hangs before READY, 4. one
#      that crashes after READY before proving itself (tests/systemd/
#      fake_agent as release 7, 8, 9): each rolled back to release 6, the
#      time from the restart to the restored agent answering measured
#      against probation + 30 s.
#
# Before the agent's update the packaged agent deploys kiosk release 1 (a
# busybox image) in a container; after every case the container's init and
# monitor must be the same processes, alive (KillMode=process). The
# runtime's cgroup v1 controllers are the host's, mounted writable in the
# container. The tracker runs on the host's loopback (the container shares
# the host's network); the node trusts its root.json and verifies its
# metadata, which is the agent's proof. Not part of the test command: it needs a Debian root
# with systemd (debootstrap, kept in $FLOTILLA_NSPAWN_ROOT, default
# /var/tmp/flotilla-agent-systemd) and takes about 7 minutes, most of it the
# hang case's probation.
#
# BUILD=dir (default build) holds the built programs and fake_agent.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
base=${FLOTILLA_NSPAWN_ROOT:-/var/tmp/flotilla-agent-systemd}
root=$base/root
machine=flotilla-agent
suite=bookworm
export DEBIAN_FRONTEND=noninteractive

log() { printf '== agent-under-systemd: %s\n' "$*" >&2; }
die() {
  log "$*"
  exit 1
}

need_host_tools() {
  local missing=()
  command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v cpack >/dev/null || missing+=(cmake)
  if ((${#missing[@]})); then
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# The flotilla-node .deb of $BUILD (cpack), installed into the root with its
# dependencies by the root's own apt.
install_package() {
  local deb
  log "flotilla-node .deb from $BUILD"
  (cd "$BUILD" && cpack -G DEB >/dev/null)
  deb=$(ls -t "$BUILD"/flotilla-node_*_amd64.deb | head -1)
  [[ -f $deb ]] || die "cpack made no flotilla-node .deb in $BUILD"
  cp "$deb" "$root/tmp/flotilla-node.deb"
  chroot "$root" apt-get install -y -qq --no-install-recommends --allow-downgrades \
    /tmp/flotilla-node.deb >/dev/null 2>"$base/apt.log" || die "apt: $(tail -5 "$base/apt.log")"
  rm -f "$root/tmp/flotilla-node.deb"
}

prepare_root() {
  # make_rootfs ARCH DIR [PACKAGES...] from this machine's apt sources
  source scripts/rootfs.sh
  find_mirrors
  log "Debian $suite root with systemd in $root"
  mkdir -p "$base"
  make_rootfs amd64 "$root" systemd systemd-sysv dbus procps python3
  install_package
  # The container's own console and network: none to set up (the host's
  # network is shared); no getty on a console nobody reads.
  chroot "$root" systemctl mask console-getty.service getty@.service \
    systemd-networkd.service systemd-resolved.service >/dev/null 2>&1 || true
  echo "$machine" >"$root/etc/hostname"
}

# --- the container -------------------------------------------------------

nspawn_pid=
tracker_pid=
controllers=(memory pids cpu devices)
work=$base/work
# A command inside the booted container (all its namespaces).
inside() { nsenter -t "$init_pid" -a "$@"; }
cleanup() {
  if [[ -n $nspawn_pid ]]; then
    inside systemctl poweroff >/dev/null 2>&1 || true
    for _ in $(seq 60); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.5; done
    kill "$nspawn_pid" 2>/dev/null || true
  fi
  [[ -z $tracker_pid ]] || kill "$tracker_pid" 2>/dev/null || true
}
trap cleanup EXIT

boot() {
  log "boot: systemd-nspawn --boot (the host's network, systemd as PID 1)"
  # The runtime's cgroup v1 controllers writable, as on a device: nspawn
  # mounts the container's read-only, so the host's hierarchies are bound
  # beside them and mounted over them once the container runs.
  local c binds=()
  for c in "${controllers[@]}"; do
    mkdir -p "$root/mnt/host-cgroup/$c"
    binds+=("--bind=/sys/fs/cgroup/$c:/mnt/host-cgroup/$c")
  done
  systemd-nspawn -D "$root" --boot --register=no --keep-unit -M "$machine" "${binds[@]}" \
    --console=passive >"$work/nspawn.log" 2>&1 &
  nspawn_pid=$!
  init_pid=
  for _ in $(seq 100); do
    init_pid=$(pgrep -P "$nspawn_pid" -x systemd || true)
    [[ -n $init_pid ]] && inside systemctl is-system-running --wait >/dev/null 2>&1 && break
    sleep 0.3
  done
  [[ -n $init_pid ]] || die "the container did not boot: $(tail -5 "$work/nspawn.log")"
  for c in "${controllers[@]}"; do
    inside mount --bind "/mnt/host-cgroup/$c" "/sys/fs/cgroup/$c"
  done
  echo "container $machine: systemd $(inside systemctl --version | head -1 | cut -d' ' -f2)," \
    "state $(inside systemctl is-system-running || true)"
}

# A tracker on the host's loopback with release 1 of an app, kiosk (the
# demo's busybox image), that the node deploys in a container before the
# agent is updated.
start_tracker() {
  local tracker=$BUILD/tracker/flotilla-tracker
  rm -rf "$work/repo"
  "$tracker" init "$work/repo" --public-url http://127.0.0.1:1 >/dev/null
  mkdir -p "$base/images"
  [[ -f $base/images/busybox-v1.oci.tar ]] || bash sim/scenarios/images/make.sh "$base/images" >/dev/null
  cat >"$work/kiosk.json" <<'SPEC'
{"name": "kiosk", "command": ["/bin/sh", "-c", "echo kiosk up; exec sleep 1000000"],
 "health": {"type": "running", "seconds": 1}, "restart": {"policy": "always"}}
SPEC
  "$tracker" publish --repository "$work/repo" --app kiosk --spec "$work/kiosk.json" \
    "$base/images/busybox-v1.oci.tar" >/dev/null
  (umask 077 && echo "fleet-token-for-the-systemd-run-0123456789" >"$work/fleet-token")
  "$tracker" serve --repository "$work/repo" --listen 127.0.0.1:0 --port-file "$work/port" \
    --fleet-token-file "$work/fleet-token" --log-level warn >"$work/tracker.log" 2>&1 &
  tracker_pid=$!
  for _ in $(seq 50); do [[ -s $work/port ]] && break; sleep 0.1; done
  [[ -s $work/port ]] || die "the tracker did not start: $(tail -5 "$work/tracker.log")"
}

configure_node() {
  rm -rf "$root/var/lib/flotilla" "$root/etc/systemd/system/flotilla-node.service.d"
  mkdir -p "$root/etc/flotilla"
  cp "$work/repo/metadata/1.root.json" "$root/etc/flotilla/root.json"
  install -m 0600 "$work/fleet-token" "$root/etc/flotilla/fleet-token"
  cat >"$root/etc/flotilla/node.json" <<JSON
{"tracker_url": "http://127.0.0.1:$(cat "$work/port")",
 "enrolment_token_file": "/etc/flotilla/fleet-token", "device_name": "$machine",
 "data_dir": "/var/lib/flotilla", "root_of_trust": "/etc/flotilla/root.json",
 "apps": ["kiosk"], "deploy": true, "transfer_mode": "http-only", "agent_update": true,
 "refresh_interval_s": 5, "lan": {"enabled": false}}
JSON
  # The agents to install: the build's binaries (release 6) and fake_agent
  # as flotilla-node-full (7, 8, 9), debug info stripped as a release ships.
  local dir
  rm -rf "$root/opt/agents"
  for dir in good fake; do
    mkdir -p "$root/opt/agents/$dir"
    strip --strip-debug -o "$root/opt/agents/$dir/flotilla-node" "$BUILD/node/flotilla-node"
    strip --strip-debug -o "$root/opt/agents/$dir/flotilla-monitor" \
      "$BUILD/runtime/flotilla-monitor"
  done
  strip --strip-debug -o "$root/opt/agents/good/flotilla-node-full" \
    "$BUILD/node/flotilla-node-full"
  cp "$BUILD/tests/systemd/fake_agent" "$root/opt/agents/fake/flotilla-node-full"
}

# The app's container: "init_pid monitor_pid" of every running.json (pids of
# the container's pid namespace), sorted.
container_pids() {
  find "$root/var/lib/flotilla/runtime" -name running.json -exec python3 -c '
import json, sys
for f in sys.argv[1:]:
    r = json.load(open(f)); print(r["init_pid"], r["monitor_pid"])' {} + 2>/dev/null | sort
}
# The container's init and monitor are the ones recorded before, alive.
same_container() {
  local now pid
  now=$(container_pids)
  [[ -n $now && $now == "$app_pids" ]] || { echo "  app: container changed: '$app_pids' -> '$now'"; return 1; }
  for pid in $now; do inside kill -0 "$pid" || { echo "  app: process $pid is gone"; return 1; }; done
  echo "  app: the same container, init and monitor alive (pids $(echo $now))"
  app_state="same init and monitor, alive"
}

# --- what the agent does ----------------------------------------------------

agent_json() { cat "$root/var/lib/flotilla/agent/agent.json" 2>/dev/null || echo '{}'; }
# agent.json's member $1 (a python expression on `a`), or "-".
slot() { agent_json | python3 -c "import json,sys; a=json.load(sys.stdin); print($1)" 2>/dev/null || echo -; }
# The release the running agent says it is when its control API answers
# with its metadata verified; else nothing.
proven_release() {
  inside flotilla-node status --json 2>/dev/null | python3 -c '
import json, sys
a = json.load(sys.stdin)["agent"]
if a["ready"] and a["metadata_verified"]: print(a["release"])' 2>/dev/null || true
}
main_exe() {
  local pid
  pid=$(inside systemctl show -P MainPID flotilla-node)
  [[ $pid != 0 ]] && inside readlink "/proc/$pid/exe" || echo -
}
seconds_since() { python3 -c "import time; print('%.1f' % (time.monotonic() - $1))"; }
now() { python3 -c 'import time; print(time.monotonic())'; }
# Waits up to $2 s for the shell condition $1; 0 when it held.
wait_until() {
  local deadline=$((SECONDS + $2))
  until eval "$1"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}
show() {
  echo "\$ flotilla-node agent status"
  inside flotilla-node agent status | sed 's/^/  /'
  echo "\$ systemctl status flotilla-node (first lines)"
  inside systemctl status flotilla-node --no-pager -n 0 2>/dev/null | grep -E '^. flotilla|Active:|Main PID:|Status:' |
    sed 's/^/  /'
}

dropins=$root/etc/systemd/system/flotilla-node.service.d
# The units' journal of the last $1 seconds, what the agents and systemd did.
journal_since() {
  echo "  journal:"
  inside journalctl -u flotilla-node -u flotilla-node-agent-check --no-pager -o cat \
    --since "-$(printf '%.0f' "$(python3 -c "print($1 + 1)")")s" 2>/dev/null |
    grep -Ei 'fake agent|agent launch|agent check|agent release|Main process|Stopped|Started' | tail -16 |
    sed 's/^/    /'
}

results=()
limit=$((120 + 30))

# The daemon updates itself: the build's binaries, stripped, published with
# `flotilla-tracker agent publish` as release 1 of flotilla-agent-amd64; the
# running agent fetches it, installs it, exits 3, systemd restarts the unit
# into it, the timer's check confirms it.
self_update() {
  log "case 0: the daemon updates itself (flotilla-agent-amd64 release 1 published)"
  local src=$work/agent-src t0 took
  rm -rf "$src" && mkdir -p "$src"
  strip --strip-debug -o "$src/flotilla-node" "$BUILD/node/flotilla-node"
  strip --strip-debug -o "$src/flotilla-monitor" "$BUILD/runtime/flotilla-monitor"
  strip --strip-debug -o "$src/flotilla-node-full" "$BUILD/node/flotilla-node-full"
  t0=$(now)
  "$BUILD/tracker/flotilla-tracker" agent publish --repository "$work/repo" --arch amd64 "$src" |
    sed 's/^/  /'
  wait_until '[[ $(slot "a.get(\"confirmed\", 0)") == 1 && $(proven_release) == 1 ]]' 240 ||
    die "release 1 was not installed and confirmed in 240 s: $(inside journalctl -u flotilla-node --no-pager | tail -8)"
  took=$(seconds_since "$t0")
  show
  echo "  main process: $(main_exe)"
  journal_since "$took"
  same_container || die "the app's container did not survive the agent's update"
  results+=("$(printf '%-18s %8s %-22s %8s %8s  %s' "published (exit 3)" 1 "confirmed: $(slot 'a["confirmed"]')" "$took" - "$app_state")")
}

good_agent() {
  log "case 1: a good agent (release 6)"
  inside flotilla-node agent install --release 6 /opt/agents/good | sed 's/^/  /'
  local t0 took
  t0=$(now)
  inside systemctl restart --no-block flotilla-node
  wait_until '[[ $(slot "a.get(\"confirmed\", 0)") == 6 ]]' $((limit + 30)) ||
    die "release 6 was not confirmed in $((limit + 30)) s"
  took=$(seconds_since "$t0")
  show
  echo "  main process: $(main_exe)"
  journal_since "$took"
  same_container || die "the app's container did not survive the agent's update"
  results+=("$(printf '%-18s %8s %-22s %8s %8s  %s' good 6 "confirmed: $(slot 'a["confirmed"]')" "$took" 120 "$app_state")")
}

# A bad agent as release $1 behaving as $2: restored to release 6.
bad_agent() {
  local release=$1 mode=$2 t0 took
  log "case: release $release, fake agent '$mode'"
  # A drop-in on the root's disk (the container's /run is its own tmpfs).
  mkdir -p "$dropins"
  printf '[Service]\nEnvironment=FLOTILLA_FAKE_AGENT=%s\n' "$mode" >"$dropins/fake-agent.conf"
  inside systemctl daemon-reload
  inside flotilla-node agent install --release "$release" /opt/agents/fake | sed 's/^/  /'
  t0=$(now)
  inside systemctl restart --no-block flotilla-node
  wait_until '[[ $(slot "a.get(\"rolled_back\", {}).get(\"release\", 0)") == '"$release"' &&
                 $(proven_release) == 6 ]]' $((limit + 30)) ||
    die "release $release ($mode) was not rolled back to release 6 within $((limit + 30)) s"
  took=$(seconds_since "$t0")
  show
  echo "  main process: $(main_exe)"
  journal_since "$took"
  same_container || die "the app's container did not survive the rollback"
  results+=("$(printf '%-18s %8s %-22s %8s %8s  %s' "$mode" "$release" \
    "rolled back, runs $(proven_release)" "$took" "$limit" "$app_state")")
  rm -f "$dropins/fake-agent.conf"
  inside systemctl daemon-reload
}

need_host_tools
[[ -x $BUILD/tracker/flotilla-tracker && -x $BUILD/tests/systemd/fake_agent ]] ||
  die "build flotilla first (bash scripts/build.sh): no $BUILD/tracker/flotilla-tracker or $BUILD/tests/systemd/fake_agent"
prepare_root
mkdir -p "$work"
start_tracker
configure_node
boot
log "start the packaged agent: systemctl enable --now flotilla-node"
inside systemctl enable --now flotilla-node.service 2>&1 | sed 's/^/  /'
wait_until '[[ -n $(proven_release) ]]' 60 ||
  die "the packaged agent did not prove itself: $(inside journalctl -u flotilla-node --no-pager | tail -5)"
wait_until '[[ -n $(container_pids) ]]' 120 ||
  die "kiosk release 1 was not deployed: $(inside journalctl -u flotilla-node --no-pager | tail -8)"
sleep 2
app_pids=$(container_pids)
show
inside flotilla-node apps | sed 's/^/  /'
self_update
good_agent
bad_agent 7 exit
bad_agent 8 hang
bad_agent 9 crash-after-ready

echo
echo "From \`systemctl restart flotilla-node\` (from the publish for release 1) to the agent confirmed, or to the previous one"
echo "restored, READY and answering with its metadata verified (seconds; limit: probation,"
echo "or probation + 30 s):"
printf '%-18s %8s %-22s %8s %8s  %s\n' "new agent" release outcome seconds limit "kiosk's container"
for r in "${results[@]}"; do echo "$r"; done
