#!/usr/bin/env bash
# Builds the metadata fuzzer (libFuzzer + ASan + UBSan, clang-14) in its own
# build directory, build-fuzz-metadata/, and runs it for SECONDS (default 60)
# over a scratch copy of the committed seed corpus (metadata/fuzz/corpus).
# Exits non-zero if the fuzzer finds a crash, a sanitizer error or a leak; the
# failing input is kept as build-fuzz-metadata/crash-*. SECONDS 0: build only.
# Usage: scripts/fuzz-metadata.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
build=build-fuzz-metadata

CC=clang-14 CXX=clang++-14 cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DFLOTILLA_SANITIZE=ON -DFLOTILLA_TESTS=OFF -DFLOTILLA_METADATA_FUZZ=ON \
  -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link -DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link >/dev/null
cmake --build "$build" -j2 --target metadata_fuzzer
if [[ $seconds == 0 ]]; then exit 0; fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/corpus"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
echo "fuzz-metadata: running for ${seconds}s"
"$build/metadata/metadata_fuzzer" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=1024 \
  -timeout=10 -print_final_stats=1 -artifact_prefix="$build/crash-" \
  "$work/corpus" metadata/fuzz/corpus
