#!/bin/sh
# PID 1 of the power-cut guest (bench/powercut/make-guest.sh puts it in the
# initramfs as /init). A device's boot, minus what makes it slow: the root
# filesystem is copied from the initramfs into a tmpfs (the runtime's
# pivot_root cannot leave the initramfs itself), the data disk (/dev/vda:
# the harness's cache disk) is mounted at /var/lib/flotilla as a Pi mounts
# its SD card, the store is verified, and flotilla-node runs as it would
# under systemd. Then bench/powercut/guest-check.sh reports, every 2 s, what
# runs. Every line the harness reads starts with "POWERCUT <uptime>".
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
say() { echo "POWERCUT $(cut -d' ' -f1 /proc/uptime) $*"; }

if [ "$1" != stage2 ]; then
  mount -t proc proc /proc
  mount -t tmpfs -o size=256m,mode=0755 root /newroot
  for d in bin sbin usr lib lib64 etc init; do [ -e "/$d" ] && cp -a "/$d" /newroot/; done
  umount /proc
  exec switch_root /newroot /init stage2
fi

mkdir -p /proc /sys /dev /run /tmp /var/lib/flotilla
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=0755 run /run
mount -t tmpfs -o mode=1777 tmp /tmp
while read -r module; do insmod "/lib/modules/$module" 2>/dev/null; done </lib/modules/load-order
mount -t cgroup2 cgroup2 /sys/fs/cgroup
say boot kernel=$(uname -r) cpus=$(nproc) mem_kb=$(awk '/MemTotal/ {print $2}' /proc/meminfo)

ip link set lo up
nic=$(ls /sys/class/net | grep -v '^lo$' | head -1)
ip link set "$nic" up
ip addr add 10.0.2.15/24 dev "$nic"
ip route add default via 10.0.2.2

if ! mount -t ext4 -o noatime /dev/vda /var/lib/flotilla; then
  say mount-failed
  exec sh
fi
say mounted write_cache=$(cat /sys/block/vda/queue/write_cache)

# The store as the node will find it: recovered (Open) and re-hashed.
if [ -d /var/lib/flotilla/store ]; then
  verify_out=$(flotilla-node store --store /var/lib/flotilla/store verify 2>&1)
  verify_rc=$?
  echo "$verify_out" | sed 's/^/POWERCUT-VERIFY /'
  say verify rc=$verify_rc
else
  say verify rc=none
fi

SYNC_EACH_CHECK=0
FAST_WRITEBACK=0
. /etc/powercut.conf
# bench/power-cut: dirty pages go to the disk within about a second rather
# than 30 s, so a cut finds writes in the cache disk's volatile cache (where
# it keeps a random prefix or subset of them), not only in the guest's page
# cache (which a cut loses whole). bench/sd-writes keeps the kernel's
# defaults: what it counts is what a Pi writes.
if [ "$FAST_WRITEBACK" = 1 ]; then
  echo 100 >/proc/sys/vm/dirty_expire_centisecs
  echo 50 >/proc/sys/vm/dirty_writeback_centisecs
fi
# bench/sd-writes counts the disk's writes from here: everything before is on it.
[ "$SYNC_EACH_CHECK" = 1 ] && sync
say node-starting
flotilla-node run --config /etc/flotilla/node.json 2>&1 &
exec sh /usr/lib/powercut/guest-check.sh
