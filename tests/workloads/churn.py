"""asyncio service that creates tasks at a known rate, for asyncprobe's tests.

Usage: python churn.py MODE RATE STATUS_FILE [--named] [--uvloop]

MODE churn: RATE tasks/s, half finish at once (< 1 ms), half after 20 ms.
MODE leak:  RATE tasks/s that wait forever (a task leak), plus as many
            that finish at once (2 * RATE created per second).
MODE idle:  no tasks at all beyond the main one.

Every 50 ms the service appends "MONOTONIC CREATED FINISHED PENDING" to
STATUS_FILE: its own count, which the tests compare with asyncprobe's.
The line that creates the tasks carries a "# LINE:<name>" marker.
"""
import asyncio
import sys
import time

created = finished = 0


async def quick():
    global finished
    finished += 1


async def slow():
    global finished
    await asyncio.sleep(0.02)
    finished += 1


async def stuck(forever):  # LINE:stuck_def
    await forever.wait()  # LINE:stuck


def spawn(coro, named):
    global created
    created += 1
    name = "job-%d" % created if named else None
    return asyncio.create_task(coro, name=name)  # LINE:spawn


async def report(path):
    with open(path, "a") as f:
        while True:
            pending = len([t for t in asyncio.all_tasks() if not t.done()])
            f.write("%.6f %d %d %d\n" % (time.monotonic(), created,
                                         finished, pending))
            f.flush()
            await asyncio.sleep(0.05)


async def main(mode, rate, path, named):
    forever = asyncio.Event()
    keep = set()
    reporter = asyncio.create_task(report(path))
    tick = 0.01
    batch = rate * tick
    owed = 0.0
    next_t = time.monotonic()
    while mode != "idle":
        owed += batch
        while owed >= 1:
            owed -= 1
            if mode == "leak":
                keep.add(spawn(stuck(forever), named))
                spawn(quick(), named)
            else:
                spawn(quick() if created % 2 else slow(), named)
        next_t += tick
        await asyncio.sleep(max(0.0, next_t - time.monotonic()))
    await reporter


if __name__ == "__main__":
    mode, rate, path = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    if "--uvloop" in sys.argv:
        import uvloop
        uvloop.install()
    asyncio.run(main(mode, rate, path, "--named" in sys.argv))
