#!/usr/bin/python3
"""How exactly stalls are timed: a loop that never sleeps in its selector
(a task yields to it all the time, as a saturated service's does) stalls
STALLS times for 250 ms of CPU each; asyncprobe watches it with its
defaults, then with --selector-hook always.  Prints, per way a stall was
timed ("selector": the hook saw the loop leave and get back to its selector;
"loop_clock": the loop's own clock, where the hook is a syscall tracepoint
and detached), how many of the stalls were found and their durations, and
the share of the run the hook was attached.

Usage: clock_precision.py [STALLS]   (default 40; ~25 s per run)
Needs root."""
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PROBE = os.environ.get("ASYNCPROBE") or os.path.join(ROOT, "asyncprobe")
PY = os.environ.get("PY", "/usr/bin/python3.11")
STALL_S = 0.25

WORKLOAD = """
import asyncio, sys, time

def burn(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass

async def spinner():
    while True:
        await asyncio.sleep(0)

async def main(n):
    asyncio.ensure_future(spinner())
    await asyncio.sleep(2)  # asyncprobe attaches, finds the loop's clock
    for _ in range(n):
        burn(%r)
        await asyncio.sleep(0.2)
    print("done", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main(int(sys.argv[1])))
""" % STALL_S


def run(stalls, probe_args):
    wl = subprocess.Popen(["taskset", "-c", "0", PY, "-c", WORKLOAD, str(stalls)],
                          stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        probe = subprocess.Popen(["taskset", "-c", "1", PROBE, "-p", str(wl.pid), "-f", "json",
                                  *probe_args], stdout=subprocess.PIPE, text=True)
        if wl.stdout.readline().strip() != "done":
            raise RuntimeError("the workload did not finish its stalls")
        time.sleep(0.5)
        probe.send_signal(2)
        out, _ = probe.communicate(timeout=30)
    finally:
        wl.kill()
        wl.wait()
    return [json.loads(l) for l in out.splitlines() if l.strip()]


def main():
    stalls = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    print("%d stalls of %.0f ms of CPU in a loop that never sleeps in its selector (%s)"
          % (stalls, STALL_S * 1e3, PY))
    for label, args in (("defaults", ()), ("--selector-hook always", ("--selector-hook", "always"))):
        ev = run(stalls, args)
        summary = ev[-1] if ev and ev[-1]["event"] == "summary" else {}
        found = [e for e in ev if e["event"] == "stall" and not e.get("in_progress")]
        print("  %-24s found %d of %d; selector hook attached %.1f%% of the run"
              % (label, len(found), stalls, 100 * summary.get("selector_hook_share", 0)))
        for how in ("selector", "loop_clock"):
            d = sorted(e["duration_ms"] for e in found if e.get("timed_by") == how)
            if d:
                print("    %-10s %3d  min %.1f  median %.1f  p90 %.1f  max %.1f ms"
                      % (how, len(d), d[0], statistics.median(d), d[int(0.9 * (len(d) - 1))],
                         d[-1]))


if __name__ == "__main__":
    main()
