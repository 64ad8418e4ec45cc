#!/bin/sh
# The job scripts/cross.sh gives the arm64 guest (scripts/pi-guest.sh run):
# runs every *_test binary copied into the job directory or a directory of
# it (arm64/, armhf/), with temporary files on the guest's disk, and prints
# one line per binary, then the totals, for the host to read:
#   FLOTILLA-TESTS armhf/layerstore_test run=61 passed=61 failed=0
#   FLOTILLA-TESTS-FAILED armhf/layerstore_test LayerStoreTest.Something
#   FLOTILLA-TESTS-TOTAL run=120 passed=120 failed=0
set -u
export TEST_TMPDIR=/var/tmp/flotilla-tests
# The runtime's tests start their apps under flotilla-monitor: the guest's
# installed package has it (a static arm64 program; the test binaries here
# are copied without their build tree).
if [ -x /usr/bin/flotilla-monitor ]; then export FLOTILLA_MONITOR=/usr/bin/flotilla-monitor; fi
mkdir -p "$TEST_TMPDIR"
# Fixtures the tests read from the source tree, at the path compiled into
# them (the host checkout's): source-files/ holds them under that path.
if [ -d source-files ]; then cp -a source-files/. /; fi
total_run=0
total_failed=0
for binary in ./*_test ./*/*_test; do
  [ -x "$binary" ] || continue
  name=${binary#./}
  mkdir -p "$TEST_TMPDIR/$(dirname "$name")"
  "$binary" --gtest_brief=1 --gtest_output="xml:$TEST_TMPDIR/$name.xml" >"$TEST_TMPDIR/$name.log" 2>&1
  run=$(grep -o 'tests="[0-9]*"' "$TEST_TMPDIR/$name.xml" 2>/dev/null | head -1 | tr -dc 0-9)
  failed=$(grep -o 'failures="[0-9]*"' "$TEST_TMPDIR/$name.xml" 2>/dev/null | head -1 | tr -dc 0-9)
  skipped=$(grep -c 'result="skipped"' "$TEST_TMPDIR/$name.xml" 2>/dev/null)
  disabled=$(grep -o 'disabled="[0-9]*"' "$TEST_TMPDIR/$name.xml" 2>/dev/null | head -1 | tr -dc 0-9)
  if [ -z "$run" ]; then
    echo "FLOTILLA-TESTS $name run=0 passed=0 failed=1 (no result: it crashed)"
    tail -20 "$TEST_TMPDIR/$name.log"
    total_failed=$((total_failed + 1))
    continue
  fi
  run=$((run - ${skipped:-0} - ${disabled:-0}))
  echo "FLOTILLA-TESTS $name run=$run passed=$((run - failed)) failed=$failed skipped=${skipped:-0}"
  grep '^\[  FAILED  \] [A-Za-z]' "$TEST_TMPDIR/$name.log" | sed "s/^\[  FAILED  \] /FLOTILLA-TESTS-FAILED $name /; s/,.*//"
  # A skipped test names itself and its reason (its GTEST_SKIP message).
  awk -v bin="$name" '
    /<testcase / && /result="skipped"/ {
      match($0, /name="[^"]*"/); test = substr($0, RSTART + 6, RLENGTH - 7)
      match($0, /classname="[^"]*"/); suite = substr($0, RSTART + 11, RLENGTH - 12)
      pending = 1; next
    }
    pending && /<skipped / {
      match($0, /message="[^"]*"/); why = substr($0, RSTART + 9, RLENGTH - 10)
      gsub(/&#x0A;/, " ", why)
      print "FLOTILLA-TESTS-SKIPPED " bin " " suite "." test ": " why
      pending = 0
    }' "$TEST_TMPDIR/$name.xml"
  # A failure's own words, for the host's log (the job directory goes).
  if [ "${failed:-0}" != 0 ]; then
    grep -B2 -A12 ': Failure$' "$TEST_TMPDIR/$name.log" | head -60 | sed "s|^|FLOTILLA-TESTS-LOG $name: |"
  fi
  total_run=$((total_run + run))
  total_failed=$((total_failed + failed))
done
echo "FLOTILLA-TESTS-TOTAL run=$total_run passed=$((total_run - total_failed)) failed=$total_failed"
[ "$total_failed" = 0 ]
