#!/bin/bash
# `make test`: the cmocka unit tests, then the integration tests (real BPF
# against real Python processes).  Ends with one line: N passed, N failed.
set -u
cd "$(dirname "$0")/.."
passed=0
failed=0
skipped=0

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

if [ "$(id -u)" -ne 0 ]; then
	echo "integration tests need root (BPF, reading other processes): skipped" >&2
	skipped=$((skipped + 1))
else
	# shown as it runs; kept in a file (tee to /dev/stderr would reopen,
	# and truncate, a log file that stderr points to)
	log=$(mktemp)
	/usr/bin/python3 tests/integration/run.py ${TESTS:+-k "$TESTS"} 2>&1 | tee "$log"
	out=$(cat "$log")
	rm -f "$log"
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' <<<"$out" | tail -n 1)
	if [ -z "$line" ]; then
		echo "FAIL integration: no summary line"
		failed=$((failed + 1))
	else
		read -r p _ f _ s _ <<<"${line//,/}"
		passed=$((passed + p))
		failed=$((failed + f))
		skipped=$((skipped + ${s:-0}))
	fi
fi

echo
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
