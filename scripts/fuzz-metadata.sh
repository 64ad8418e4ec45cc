#!/usr/bin/env bash
# The metadata fuzzer: scripts/fuzz.sh metadata [SECONDS].
exec bash "$(dirname "$0")/fuzz.sh" metadata "$@"
