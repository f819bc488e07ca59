#!/bin/bash
# What the sched_switch program costs per context switch of any process on
# the machine, for one or more asyncprobe builds attached at once (each to
# an idle asyncio process): bpf_stats over the same switches, made by
# `perf bench sched pipe` on CPU 1.  Needs root and perf.
#
# Usage: switch_cost.sh [ASYNCPROBE...]     (default: ./asyncprobe)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-/usr/bin/python3.11}
[ $# -gt 0 ] || set -- ./asyncprobe
pids=()
cleanup() {
	echo 0 >/proc/sys/kernel/bpf_stats_enabled
	kill -INT "${probes[@]}" 2>/dev/null || true
	sleep 1
	kill "${pids[@]}" 2>/dev/null || true
}
probes=()
trap cleanup EXIT
for b in "$@"; do
	"$PY" -c "import asyncio; asyncio.run(asyncio.sleep(600))" &
	pids+=($!)
	sleep 0.3
	"$b" -p "${pids[-1]}" >/dev/null 2>&1 &
	probes+=($!)
done
sleep 2
echo 1 >/proc/sys/kernel/bpf_stats_enabled
taskset -c 1 perf bench sched pipe -l 500000 >/dev/null 2>&1
builds=("$@")
for i in "${!probes[@]}"; do
	for id in $(awk '/^prog_id:/ {print $2}' /proc/"${probes[$i]}"/fdinfo/* \
		2>/dev/null | sort -u); do
		bpftool -j prog show id "$id" 2>/dev/null
		echo
	done | python3 -c '
import json, sys
build = sys.argv[1]
for line in sys.stdin:
    if not line.strip():
        continue
    p = json.loads(line)
    if "sched_switch" in p.get("name", "") and p.get("run_cnt"):
        print("%-24s %-24s %9d runs %6.1f ns/run" % (build, p["name"], p["run_cnt"],
                                                   p["run_time_ns"] / p["run_cnt"]))
' "${builds[$i]}"
done
