#!/usr/bin/env bash
# Builds one libFuzzer target (libFuzzer + ASan + UBSan, clang-14; the modules
# it links instrumented with fuzzer-no-link) in build-fuzz/ and runs it for
# SECONDS (default 60) over a scratch corpus:
#   metadata  metadata/fuzz/metadata_fuzzer.cpp: signed TUF metadata, seeded
#             with the committed metadata/fuzz/corpus;
#   delta     layerstore/fuzz/delta_fuzzer.cpp: delta files applied to a real
#             layer store, seeded with deltas the encoder makes at start-up
#             (and truncated copies of them) and the inputs of past findings
#             in layerstore/fuzz/corpus.
# Exits non-zero if the fuzzer finds a crash, a sanitizer error, a leak, a
# hang (10 s per input) or an input that needs more memory than the limit;
# the failing input is kept as build-fuzz/TARGET-crash-* (rerun it with
# `build-fuzz/<dir>/TARGET_fuzzer FILE`). SECONDS 0: build only.
# Usage: scripts/fuzz.sh metadata|delta [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: scripts/fuzz.sh metadata|delta [SECONDS]}
seconds=${2:-60}
build=build-fuzz

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/corpus"
case $target in
  metadata)
    binary=$build/metadata/metadata_fuzzer
    # A metadata document's largest parsers allocate ~500 MB under ASan.
    args=(-max_len=65536 -rss_limit_mb=1024 "$work/corpus" metadata/fuzz/corpus) ;;
  delta)
    binary=$build/layerstore/delta_fuzzer
    export FLOTILLA_DELTA_FUZZ_SEEDS=$work/corpus
    # Its store goes under $work too, removed even if the fuzzer is killed.
    export TMPDIR=$work
    # The device's RAM: a delta must never need more.
    args=(-max_len=65536 -rss_limit_mb=512 "$work/corpus" layerstore/fuzz/corpus) ;;
  *) echo "fuzz.sh: unknown target '$target' (metadata or delta)" >&2; exit 2 ;;
esac

# libFuzzer's usual flags: -O1 and line tables (stack traces) compile in
# about 4/5 of RelWithDebInfo's time; assertions stay on.
opt="-O1 -gline-tables-only"
CC=clang-14 CXX=clang++-14 cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_C_FLAGS_RELEASE="$opt" -DCMAKE_CXX_FLAGS_RELEASE="$opt" \
  -DFLOTILLA_SANITIZE=ON -DFLOTILLA_TESTS=OFF -DFLOTILLA_FUZZ=ON \
  -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link -DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link >/dev/null
cmake --build "$build" -j2 --target "${target}_fuzzer"
if [[ $seconds == 0 ]]; then exit 0; fi

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
echo "fuzz.sh: running the $target fuzzer for ${seconds}s"
"$binary" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
  -artifact_prefix="$build/$target-crash-" "${args[@]}"
