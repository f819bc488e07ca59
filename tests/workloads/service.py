"""An asyncio service that does every bad thing at once, for the exporter's
tests: each second it stalls its loop on the CPU, blocks it in time.sleep,
creates ~1,500 short tasks and leaks ~60 that never finish.  With --hang
SECONDS it also blocks its loop once for that long, 8 s in.

Usage: python service.py NAME [--hang SECONDS]

NAME only labels the command line (the exporter finds services by it).
"""
import asyncio
import sys
import time

CHURN_PER_S = 1500
LEAK_PER_S = 60
HANG_AT_S = 8  # after Prometheus has started watching


def stall_here(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:  # LINE:svc_stall
        pass


def sleep_here(seconds):
    time.sleep(seconds)  # LINE:svc_sleep


async def quick():
    pass


async def stuck(forever):
    await forever.wait()


async def churn(forever):
    keep = set()
    while True:
        for _ in range(CHURN_PER_S // 20):
            t = asyncio.create_task(quick())
            keep.add(t)
            t.add_done_callback(keep.discard)
        for _ in range(LEAK_PER_S // 20):
            keep.add(asyncio.create_task(stuck(forever)))
        await asyncio.sleep(0.05)


async def main(hang):
    forever = asyncio.Event()
    asyncio.create_task(churn(forever))
    start = time.monotonic()
    while True:
        await asyncio.sleep(0.4)
        stall_here(0.15)
        await asyncio.sleep(0.4)
        sleep_here(0.12)
        if hang and time.monotonic() - start > HANG_AT_S:
            sleep_here(hang)
            hang = 0


if __name__ == "__main__":
    hang = float(sys.argv[sys.argv.index("--hang") + 1]) if "--hang" in sys.argv else 0
    asyncio.run(main(hang))
