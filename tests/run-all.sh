#!/bin/bash
# `make test`: the cmocka unit tests, then the integration tests (real BPF
# against real Python processes).  Ends with one line: N passed, N failed.
set -u
cd "$(dirname "$0")/.."
passed=0
failed=0
skipped=0
retried=0

for t in "$@"; do
	out=$("$t" 2>&1)
	rc=$?
	echo "$out"
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test(s)\./\1/p' <<<"$out")
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s).*/\1/p' <<<"$out")
	passed=$((passed + ${p:-0}))
	failed=$((failed + ${f:-0}))
	# a crash or a runner error counts as a failure
	if [ "$rc" -ne 0 ] && [ -z "$f" ]; then
		echo "FAIL $t: exit $rc"
		failed=$((failed + 1))
	fi
done

# A Python test runner whose last summary line is "N passed, N failed, N
# skipped": shown as it runs, kept in a file (tee to /dev/stderr would
# reopen, and truncate, a log file that stderr points to).
suite() {
	local name=$1 log out line p f s r
	shift
	log=$(mktemp)
	/usr/bin/python3 "$@" 2>&1 | tee "$log"
	out=$(cat "$log")
	rm -f "$log"
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' <<<"$out" | tail -n 1)
	if [ -z "$line" ]; then
		echo "FAIL $name: no summary line"
		failed=$((failed + 1))
		return
	fi
	read -r p _ f _ s _ <<<"${line//,/}"
	r=$(grep -oE '\(([0-9]+) passed only' <<<"$line" | grep -oE '[0-9]+' || true)
	retried=$((retried + ${r:-0}))
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + ${s:-0}))
}

if [ "$(id -u)" -ne 0 ]; then
	echo "integration tests need root (BPF, reading other processes): skipped" >&2
	skipped=$((skipped + 1))
else
	suite integration tests/integration/run.py ${TESTS:+-k "$TESTS"}
	# the exporter against a real Prometheus (not narrowed by TESTS)
	[ -z "${TESTS:-}" ] && suite exporter tests/integration/exporter.py
	# bad input, what targets do, the target unharmed, a short soak
	suite reliability tests/integration/reliability.py ${TESTS:+-k "$TESTS"}
fi

echo
echo "$passed passed, $failed failed, $skipped skipped" \
	"($retried passed only on a second run)"
[ "$failed" -eq 0 ]
