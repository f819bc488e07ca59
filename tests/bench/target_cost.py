"""Costs seen by an asyncio target: ns per os.getppid() on the loop thread
and ns per event-loop iteration (one epoll_wait each).  Waits DELAY seconds
first so that a profiler can attach.  Prints: getppid_ns iteration_ns"""
import asyncio
import os
import sys
import time


async def main(delay):
    await asyncio.sleep(delay)
    best_sys = best_iter = float("inf")
    for _ in range(5):
        n = 300_000
        t0 = time.perf_counter_ns()
        for _ in range(n):
            os.getppid()
        best_sys = min(best_sys, (time.perf_counter_ns() - t0) / n)
        n = 50_000
        t0 = time.perf_counter_ns()
        for _ in range(n):
            await asyncio.sleep(0)
        best_iter = min(best_iter, (time.perf_counter_ns() - t0) / n)
    print("%.1f %.1f" % (best_sys, best_iter), flush=True)


asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 0))
