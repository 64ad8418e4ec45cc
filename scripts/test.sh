#!/usr/bin/env bash
# Installs what is needed, builds, and runs the whole test suite:
#  1. the normal build (build/) and every CTest test in it;
#  2. an ASan+UBSan build (build-asan/) of the modules that parse untrusted
#     input, do crypto or write the store, and their tests.
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
echo "== sanitizer build (ASan+UBSan): core, metadata, layerstore =="
ctest --test-dir build-asan -j"$jobs" --output-on-failure || status=1
echo "== full build =="
ctest --test-dir build -j"$jobs" --output-on-failure || status=1

echo "== metadata fuzzer (libFuzzer + ASan/UBSan, 60 s) =="
bash scripts/fuzz-metadata.sh 60 2>&1 | tail -60 || status=1

echo "test.sh: finished in $(( $(date +%s) - start )) s, status $status"
exit $status
