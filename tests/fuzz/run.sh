#!/bin/bash
# Run each libFuzzer harness for SECONDS on a copy of its committed corpus.
# Usage: tests/fuzz/run.sh SECONDS NAME...   (built by `make fuzz-build`)
# New inputs stay in .output-fuzz/corpus/NAME (not committed).  A crash,
# sanitizer report, leak, hang (-timeout) or blown memory limit stops that
# harness; its input is kept in .output-fuzz/crashes/NAME/ and the run
# fails, naming both.  The harnesses' stderr (messages on bad input) is
# closed; libFuzzer's and the sanitizers' reports still reach the log.
set -u
cd "$(dirname "$0")/../.."
out=.output-fuzz
seconds=$1
shift
failed=()
declare -A max_len=([record]=65536 [elf]=262144 [pyobjects]=32768
	[pytasks]=65536)
for name in "$@"; do
	corpus=$out/corpus/$name
	crashes=$out/crashes/$name
	log=$out/$name.log
	mkdir -p "$corpus" "$crashes"
	cp -n tests/fuzz/corpus/"$name"/* "$corpus"/ 2>/dev/null
	"$out/fuzz_$name" "$corpus" -max_total_time="$seconds" -timeout=10 \
		-rss_limit_mb=2048 -max_len="${max_len[$name]:-4096}" \
		-close_fd_mask=2 -artifact_prefix="$crashes/" \
		-print_final_stats=1 >"$log" 2>&1
	rc=$?
	if [ "$rc" -ne 0 ]; then
		input=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
		echo "FUZZ FAIL $name (exit $rc): input ${input:-not saved}; log $log"
		grep -m 4 -E '^==[0-9]+==ERROR|runtime error|^SUMMARY|ALARM|out-of-memory' "$log"
		failed+=("$name")
		continue
	fi
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
	cov=$(sed -n 's/.* cov: \([0-9]*\) ft: \([0-9]*\) corp: \([^ ]*\).*exec\/s: \([0-9]*\).*/cov \1, ft \2, corpus \3, \4 exec\/s/p' <<<"$last")
	echo "fuzz $name: ${execs:-?} runs in $seconds s; $cov"
done
if [ ${#failed[@]} -ne 0 ]; then
	echo "fuzzing found problems in: ${failed[*]}" >&2
	exit 1
fi
