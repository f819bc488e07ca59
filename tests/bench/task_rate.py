"""Task throughput of a saturated asyncio target: tasks created, run and
finished per second, in batches of 100 gathered tasks, each spinning SPINS
times in a Python loop (0: empty tasks, the highest rate).  Waits DELAY
seconds first so that a profiler can attach, then measures for SECONDS.
Prints tasks per second of wall time and per second of the process's own
CPU time (which includes what probes run in its context).

Usage: task_rate.py DELAY SECONDS [SPINS]
       task_rate.py --spins-for US   (SPINS that take about US of CPU)"""
import asyncio
import sys
import time


def calibrate(work_us):
    """Loop iterations that take about work_us of CPU (best of 5)."""
    n = 1_000_000
    best = float("inf")
    for _ in range(5):
        t0 = time.process_time()
        for _ in range(n):
            pass
        best = min(best, (time.process_time() - t0) / n)
    return max(0, int(work_us * 1e-6 / best))


async def job(spins):
    for _ in range(spins):
        pass


async def main(delay, seconds, spins):
    await asyncio.sleep(delay)
    n = 0
    c0 = time.process_time()
    t0 = time.perf_counter()
    end = t0 + seconds
    while time.perf_counter() < end:
        await asyncio.gather(*[asyncio.create_task(job(spins)) for _ in range(100)])
        n += 100
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    print("%.0f %.0f" % (n / wall, n / cpu), flush=True)


if sys.argv[1] == "--spins-for":
    print(calibrate(float(sys.argv[2])))
else:
    asyncio.run(main(float(sys.argv[1]), float(sys.argv[2]),
                     int(sys.argv[3]) if len(sys.argv) > 3 else 0))
