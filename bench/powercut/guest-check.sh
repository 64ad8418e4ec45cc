#!/bin/sh
# The power-cut guest's observer (started by guest-init.sh once the node
# runs). Every 2 s, one line for the harness:
#   POWERCUT <uptime> check layers=N releases=N containers=<app>/<release>:<VERSION>,... status=<JSON>
# layers: directories in the store's layers/; releases: the runtime's release
# directories of every app (what garbage collection leaves).
# containers: every live `flotilla-monitor run` (one per running container),
# found in /proc, not taken from the runtime's own files, and what the
# container answers to the app's health command (`cat /app/VERSION`, run
# inside it by `flotilla-monitor exec`): "-" when it does not answer.
# status: `flotilla-node status --json` (the node's control API) on one line.
# With SYNC_EACH_CHECK=1 in /etc/powercut.conf (bench/sd-writes) each line
# follows a sync, so the cache disk's counters include everything written.
say() { echo "POWERCUT $(cut -d' ' -f1 /proc/uptime) $*"; }

# A monitor's command line; its container's PID 1 is forked from it and has
# the same one, so a process whose parent has its command line is skipped.
# Only builtins run for the other processes: the guest is slow.
cmdline() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null; }
live_containers() {
  out=""
  for p in /proc/[0-9]*; do
    read -r comm <"$p/comm" 2>/dev/null || continue
    [ "$comm" = flotilla-monito ] || continue
    cmd=$(cmdline "${p#/proc/}")
    case "$cmd" in
      *flotilla-monitor\ run\ *) ;;
      *) continue ;;
    esac
    read -r _ _ _ ppid _ <"$p/stat" 2>/dev/null
    [ "$(cmdline "$ppid")" = "$cmd" ] && continue
    set -- $cmd
    dir=$3
    release=${dir##*/}
    app=${dir%/releases/*}
    app=${app##*/}
    version=$(timeout 10 flotilla-monitor exec "$dir" -- /bin/cat /app/VERSION 2>/dev/null | head -1)
    out="$out${out:+,}$app/$release:${version:--}"
  done
  echo "$out"
}

data=/var/lib/flotilla
SYNC_EACH_CHECK=0
. /etc/powercut.conf
count() { ls "$@" 2>/dev/null | wc -l; }

while :; do
  [ "$SYNC_EACH_CHECK" = 1 ] && sync
  status=$(timeout 10 flotilla-node status --json --socket /var/lib/flotilla/control.sock 2>/dev/null |
    tr -d '\n')
  say check layers=$(count $data/store/layers) releases=$(count -d $data/runtime/apps/*/releases/*) \
    containers=$(live_containers) status=${status:-none}
  sleep 2
done
