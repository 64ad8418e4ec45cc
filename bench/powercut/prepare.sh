# Sourced by bench/power-cut and bench/sd-writes: builds what the harness
# runs (the programs, the cache disk plugin, the guest's kernel and
# initramfs) and makes the work directory ($work, removed on exit unless
# POWERCUT_KEEP=1). Sets work, guest, plugin, tracker.
for tool in qemu-system-x86_64 nbdkit debugfs umoci skopeo; do
  command -v "$tool" >/dev/null || { echo "$0: $tool is missing: run scripts/setup.sh" >&2; exit 1; }
done
[[ -e /usr/include/nbdkit-plugin.h ]] || { echo "$0: nbdkit-plugin-dev is missing: run scripts/setup.sh" >&2; exit 1; }
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2 --target flotilla-node flotilla-node-full flotilla-monitor \
  flotilla-tracker flotilla-cache-disk >/dev/null
work=$(mktemp -d /var/tmp/flotilla-powercut.XXXXXX)
if [[ -n ${POWERCUT_KEEP:-} ]]; then
  trap 'echo "$0: kept $work" >&2' EXIT
else
  trap 'rm -rf "$work"' EXIT
fi
guest=$work/guest
bash bench/powercut/make-guest.sh build "$guest" >&2
plugin=$PWD/build/bench/flotilla-cache-disk.so
tracker=$PWD/build/tracker/flotilla-tracker
