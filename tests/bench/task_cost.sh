#!/bin/bash
# What watching costs a saturated asyncio target that churns tasks: its
# task throughput with and without asyncprobe attached, at about 10,000
# tasks/s (each task does ~90 us of work) and at the highest rate (empty
# tasks).  Off and on alternate ROUNDS times, the target pinned to one CPU
# and asyncprobe to another; prints medians and ratios of tasks per wall
# second and per CPU second of the target.  PY picks the interpreter.
set -eu
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-7}
SECONDS_EACH=${SECONDS_EACH:-3}
PY=${PY:-/usr/bin/python3.11}
out=.output/bench
mkdir -p $out
pin_target= pin_probe=
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
	pin_target="taskset -c 0" pin_probe="taskset -c 1"
fi

measure() { # $1 = on|off, $2 = spins per task
	local probe=
	$pin_target $PY tests/bench/task_rate.py 1 "$SECONDS_EACH" "$2" \
		>> $out/tasks.$2.$1 & local t=$!
	if [ "$1" = on ]; then
		sleep 0.3
		$pin_probe "${ASYNCPROBE:-./asyncprobe}" -p $t >/dev/null 2>&1 & probe=$!
	fi
	wait $t
	if [ -n "$probe" ]; then
		kill -INT $probe 2>/dev/null || true
		wait $probe 2>/dev/null || true
	fi
}

spins=$($pin_target $PY tests/bench/task_rate.py --spins-for 90)
for work in $spins 0; do
	rm -f $out/tasks.$work.off $out/tasks.$work.on
	for r in $(seq "$ROUNDS"); do
		measure off $work
		measure on $work
	done
done
/usr/bin/python3 - "$out" "$PY" "$ROUNDS" "$spins" <<'PY'
import statistics, sys
d, py, rounds, spins = sys.argv[1:5]
print("task throughput, %s, median of %s rounds" % (py.rsplit("/", 1)[-1], rounds))
print("%-34s %9s %12s %12s %7s" % ("", "per", "off tasks/s", "on tasks/s", "ratio"))
for work, what in ((spins, "~10,000 tasks/s (90 us each)"), ("0", "empty tasks (highest rate)")):
    off = [list(map(float, l.split())) for l in open("%s/tasks.%s.off" % (d, work))]
    on = [list(map(float, l.split())) for l in open("%s/tasks.%s.on" % (d, work))]
    for i, per in enumerate(("wall s", "CPU s")):
        a = statistics.median(r[i] for r in off)
        b = statistics.median(r[i] for r in on)
        print("%-34s %9s %12.0f %12.0f %7.3f" % (what if i == 0 else "", per, a, b, b / a))
PY
