#!/usr/bin/env bash
# Installs what is needed, builds, and runs the whole test suite:
#  1. the normal build (build/) and every CTest test in it;
#  2. an ASan+UBSan build (build-asan/) of the modules that parse untrusted
#     input, do crypto or write the store, and their tests;
#  3. a configure without tests (build-notests/), and the metadata fuzzer.
# Exits non-zero if anything fails. .ci/run runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

bash scripts/setup.sh
bash scripts/build.sh

jobs=$(nproc)
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DFLOTILLA_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

status=0
passed=0
failed=0
# Runs ctest on a build dir and adds its counts to passed/failed.
run_ctest() {
  local log
  log=$(mktemp)
  ctest --test-dir "$1" -j"$jobs" --output-on-failure 2>&1 | tee "$log" || status=1
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

echo "== sanitizer build (ASan+UBSan): core, appspec, metadata, layerstore =="
run_ctest build-asan
echo "== full build =="
run_ctest build

# A build without tests (packagers, the cross build's programs) must still
# configure: tests registered outside if(FLOTILLA_TESTS) break it.
echo "== configure with -DFLOTILLA_TESTS=OFF =="
if cmake -S . -B build-notests -G Ninja -DFLOTILLA_TESTS=OFF >/dev/null; then
  passed=$((passed + 1))
else
  failed=$((failed + 1)) status=1
fi

echo "== metadata fuzzer (libFuzzer + ASan/UBSan, 60 s) =="
if bash scripts/fuzz-metadata.sh 60 2>&1 | tail -60; then
  passed=$((passed + 1))
else
  failed=$((failed + 1)) status=1
fi

echo "test.sh: finished in $(( $(date +%s) - start )) s, status $status"
echo "$passed passed, $failed failed"
exit $status
