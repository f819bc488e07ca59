#!/bin/bash
# What asyncprobe adds to one syscall: of an unrelated process (getppid,
# epoll_wait with timeout 0) and of the target's loop thread (getppid, one
# loop iteration).  Off and on alternate ROUNDS times; medians and ratios.
# HOOKS=fentry|kprobe|tracepoint|sys_enter picks the selector hook;
# SELECTOR_HOOK=always (the default here: what the hook costs while it is
# attached) or windows (asyncprobe's default, where the hook is a syscall
# tracepoint: attached 1 s in 10, and at the start).
set -eu
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
PY=${PY:-/usr/bin/python3.11}
SELECTOR_HOOK=${SELECTOR_HOOK:-always}
out=.output/bench
mkdir -p $out
cc -O2 -o $out/syscost tests/bench/syscost.c

measure() { # $1 = on|off
	local probe= idle= idle_probe=
	if [ "$1" = on ]; then
		$PY -c "import asyncio; asyncio.run(asyncio.sleep(3600))" & idle=$!
		sleep 0.3
		"${ASYNCPROBE:-./asyncprobe}" ${HOOKS:+--hooks $HOOKS} --selector-hook $SELECTOR_HOOK -p $idle >/dev/null 2>&1 & idle_probe=$!
		sleep 1
	fi
	echo "$(.output/bench/syscost getppid) $(.output/bench/syscost epoll)" >> $out/other.$1
	$PY tests/bench/target_cost.py 1.5 > $out/t.$1.cur & local t=$!
	if [ "$1" = on ]; then
		sleep 0.3
		"${ASYNCPROBE:-./asyncprobe}" ${HOOKS:+--hooks $HOOKS} --selector-hook $SELECTOR_HOOK -p $t >/dev/null 2>&1 & probe=$!
	fi
	wait $t
	cat $out/t.$1.cur >> $out/target.$1
	for p in $probe $idle_probe $idle; do kill $p 2>/dev/null || true; done
	wait 2>/dev/null || true
}

rm -f $out/other.* $out/target.*
for r in $(seq "$ROUNDS"); do
	measure off
	measure on
done
/usr/bin/python3 - "$out" <<'PY'
import statistics, sys
d = sys.argv[1]
def cols(path):
    rows = [list(map(float, l.split())) for l in open(path) if l.strip()]
    return [statistics.median(c) for c in zip(*rows)]
oo, on = cols(d + "/other.off"), cols(d + "/other.on")
to, tn = cols(d + "/target.off"), cols(d + "/target.on")
print("%-44s %9s %9s %7s %9s" % ("per call (median)", "off ns", "on ns", "ratio", "added ns"))
for name, a, b in (("other process: getppid", oo[0], on[0]),
                   ("other process: epoll_wait(timeout 0)", oo[1], on[1]),
                   ("target loop thread: os.getppid()", to[0], tn[0]),
                   ("target loop iteration (sleep(0), 1 epoll)", to[1], tn[1])):
    print("%-44s %9.1f %9.1f %7.3f %9.1f" % (name, a, b, b / a, b - a))
PY
