#!/bin/bash
# Run each libFuzzer harness for SECONDS on a copy of its committed corpus.
# Usage: tests/fuzz/run.sh SECONDS NAME...   (built by `make fuzz-build`)
# New inputs stay in .output-fuzz/corpus/NAME (not committed); a crash
# stops that harness, is kept in .output-fuzz/crashes/NAME/ and fails the
# run, naming both.
set -u
cd "$(dirname "$0")/../.."
out=.output-fuzz
seconds=$1
shift
failed=()
declare -A max_len=([record]=65536 [elf]=262144 [pyobjects]=16384)
for name in "$@"; do
	corpus=$out/corpus/$name
	crashes=$out/crashes/$name
	mkdir -p "$corpus" "$crashes"
	cp -n tests/fuzz/corpus/"$name"/* "$corpus"/ 2>/dev/null
	log=$out/$name.log
	"$out/fuzz_$name" "$corpus" -max_total_time="$seconds" -timeout=10 \
		-rss_limit_mb=2048 -max_len="${max_len[$name]:-4096}" \
		-close_fd_mask=2 \
		-artifact_prefix="$crashes/" -print_final_stats=1 >"$log" 2>&1
	rc=$?
	stats=$(grep -E '^#[0-9]+.*DONE' "$log" | tail -n 1)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	if [ "$rc" -ne 0 ]; then
		echo "FUZZ FAIL $name (exit $rc): $(ls -t "$crashes" | head -n 1 | sed "s|^|$crashes/|"); log: $log"
		grep -m 3 -E 'ERROR|runtime error|SUMMARY' "$log"
		failed+=("$name")
	else
		echo "fuzz $name: ${execs:-?} runs in ${seconds} s; ${stats#*DONE   }"
	fi
done
if [ ${#failed[@]} -ne 0 ]; then
	echo "fuzzing found crashes in: ${failed[*]}"
	exit 1
fi
