"""asyncio service for asyncprobe's soak test: task churn, stalls and
blocking calls, all the time.

Usage: python soak.py SECONDS

2,000 tasks/s (half finish at once, half after 20 ms), a 150 ms CPU stall
and a 50 ms blocking sleep every 2 s, a short-lived thread every second.
"""
import asyncio
import sys
import threading
import time


async def quick():
    pass


async def slow():
    await asyncio.sleep(0.02)


def soak_stall():
    end = time.perf_counter() + 0.15
    while time.perf_counter() < end:
        pass


def soak_sleep():
    time.sleep(0.05)


async def churn(rate):
    n = 0
    tick = 0.01
    next_t = time.monotonic()
    while True:
        for _ in range(int(rate * tick)):
            n += 1
            asyncio.create_task(quick() if n % 2 else slow())
        next_t += tick
        await asyncio.sleep(max(0.0, next_t - time.monotonic()))


async def main(seconds):
    asyncio.create_task(churn(2000))
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        await asyncio.sleep(1)
        threading.Thread(target=time.sleep, args=(0.1,)).start()
        await asyncio.sleep(1)
        soak_stall()
        soak_sleep()


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1])))
