#!/usr/bin/env bash
# Installs what is needed, builds, and runs the whole test suite:
#  1. the normal build (build/) and every CTest test in it;
#  2. an ASan+UBSan build (build-asan/, clang) of the modules that parse untrusted
#     input, do crypto or write the store, and their tests;
#  3. a ThreadSanitizer build (build-tsan/, clang) of only the tests of what runs on
#     several threads: the node's parts, core's executors and workers, the
#     runtime called for several apps at once;
#  4. a configure without tests (build-notests/), and the two fuzzers
#     (scripts/fuzz.sh: signed metadata, and the delta decoder).
# The sanitizer and fuzzer builds (and the fuzzers' 30 s runs) go on niced
# in the background while the normal build's tests run.
# Exits non-zero if anything fails. .ci/run runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

bash scripts/setup.sh
bash scripts/build.sh

jobs=$(nproc)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

status=0
passed=0
failed=0
# run_ctest DIR PARALLEL [ctest arguments]: runs ctest on a build dir and
# adds its counts to passed/failed.
run_ctest() {
  local log
  log=$(mktemp)
  ctest --test-dir "$1" -j"$2" --output-on-failure "${@:3}" 2>&1 | tee "$log" || status=1
  local line total bad
  line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -1)
  if [[ -z $line ]]; then
    failed=$((failed + 1)) status=1
  else
    bad=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$line")
    total=$(sed -E 's/.* tests failed out of ([0-9]+).*/\1/' <<<"$line")
    passed=$((passed + total - bad)) failed=$((failed + bad))
  fi
  rm -f "$log"
}

# The sanitizer builds and the fuzzer build and run, niced, while the full
# build's tests run: those wait on processes, sockets and locks more than
# they use both cores. Each step's outcome is a file in build-bg/; a step
# that failed is reported, with its log, below.
# The sanitizer builds use clang (installed for the fuzzers): at -O0 it
# compiles them in about 60% of g++'s CPU time, and the whole of test.sh is
# bound by the two cores' CPU. The main build stays g++, the compiler of
# Debian's packages and of the cross builds.
CC=clang-14 CXX=clang++-14 cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DFLOTILLA_SANITIZE=ON >/dev/null
CC=clang-14 CXX=clang++-14 cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DFLOTILLA_TSAN=ON >/dev/null
rm -rf build-bg && mkdir build-bg
(
  nice -n 19 cmake --build build-asan -j"$jobs" >build-bg/asan.log 2>&1 && touch build-bg/asan.ok
  nice -n 19 cmake --build build-tsan -j"$jobs" --target node_parts_test node_deployer_test \
    runtime_concurrency_test core_clock_test >build-bg/tsan.log 2>&1 && touch build-bg/tsan.ok
  for fuzzer in metadata delta; do
    nice -n 19 bash scripts/fuzz.sh "$fuzzer" 30 >"build-bg/fuzz-$fuzzer.log" 2>&1 &&
      touch "build-bg/fuzz-$fuzzer.ok"
  done
) &
background=$!

# Twice as many tests as cores: most of them wait on processes, sockets
# and timers (the main suite uses about half a core at -j2); the tests that
# share namespaces, mounts or the runtime hold a RESOURCE_LOCK and run one
# at a time whatever -j is.
echo "== full build =="
run_ctest build $((jobs * 2))
wait "$background" || true

echo "== sanitizer build (ASan+UBSan): core, appspec, metadata, layerstore =="
if [[ -e build-bg/asan.ok ]]; then
  run_ctest build-asan "$jobs"
else
  tail -60 build-bg/asan.log
  failed=$((failed + 1)) status=1
fi

echo "== ThreadSanitizer: the node's parts, core's executors, the runtime's concurrency =="
if [[ -e build-bg/tsan.ok ]]; then
  # The monitor is a static program, which TSan cannot instrument: build/'s runs.
  export FLOTILLA_MONITOR="$PWD/build/runtime/flotilla-monitor"
  export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
  run_ctest build-tsan "$jobs" -R '^(MetadataFollowerTest|ReleasePipelineTest|ReporterTest|LanExchangeTest|TorrentSourceTest|NoticeWatcherTest|FleetFollowerTest|OriginRelayTest|HttpFetcherTest|DeployerTest|RuntimeConcurrencyTest|WorkerTest|TimerSlotTest|ThreadExecutorTest|ManualExecutorTest|FakeClockTest)\.'
  unset FLOTILLA_MONITOR TSAN_OPTIONS
else
  tail -60 build-bg/tsan.log
  failed=$((failed + 1)) status=1
fi

# A build without tests (packagers, the cross build's programs) must still
# configure: tests registered outside if(FLOTILLA_TESTS) break it.
echo "== configure with -DFLOTILLA_TESTS=OFF =="
if cmake -S . -B build-notests -G Ninja -DFLOTILLA_TESTS=OFF >/dev/null; then
  passed=$((passed + 1))
else
  failed=$((failed + 1)) status=1
fi

for fuzzer in metadata delta; do
  echo "== $fuzzer fuzzer (libFuzzer + ASan/UBSan, 30 s, run during the full build's tests) =="
  tail -40 "build-bg/fuzz-$fuzzer.log"
  if [[ -e build-bg/fuzz-$fuzzer.ok ]]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1)) status=1
  fi
done

echo "test.sh: finished in $(( $(date +%s) - start )) s, status $status"
echo "$passed passed, $failed failed"
exit $status
