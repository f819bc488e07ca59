"""The benchmark's target: a small aiohttp service.

Usage: service.py PORT hello|syscalls|tasks   (PORT 0: any free port)

  hello     GET / answers "Hello, world"
  syscalls  GET / also does 16 small reads and 16 small writes (a cached
            file, /dev/null): many cheap syscalls per request
  tasks     GET / as hello, while the loop creates and finishes 10,000
            short tasks per second

Every mode also has GET /stall?ms=N, which keeps the loop busy for N ms
(a CPU-bound slow callback): the harness times how soon the profiler
reports it.  Prints "ready PORT" once it listens.
"""
import asyncio
import os
import sys
import tempfile
import time

from aiohttp import web

TASK_RATE = 10_000  # tasks per second in "tasks" mode
# How often the spawner runs: 10 tasks every millisecond.  Batches of 100
# every 10 ms made the p99 of two services sharing a CPU hang on how their
# bursts fell against each other (twin p99 ratios 0.83..1.29 in one run);
# TASK_TICK=0.01 brings them back.
TASK_TICK = float(os.environ.get("TASK_TICK", "0.001"))


async def hello(request):
    return web.Response(text="Hello, world")


def make_syscalls():
    f = tempfile.TemporaryFile()
    f.write(os.urandom(4096))
    f.flush()
    rfd = f.fileno()
    wfd = os.open("/dev/null", os.O_WRONLY)
    chunk = b"x" * 64

    async def handler(request):
        for i in range(16):
            os.pread(rfd, 64, i * 64)
            os.write(wfd, chunk)
        return web.Response(text="Hello, world")

    handler.keep = f  # the file lives as long as the handler
    return handler


async def stall(request):
    ms = float(request.query.get("ms", "200"))
    end = time.perf_counter() + ms / 1e3
    while time.perf_counter() < end:
        pass
    return web.Response(text="stalled %g ms\n" % ms)


async def tiny():
    await asyncio.sleep(0)


async def spawner():
    """TASK_RATE tasks a second, created in small batches and left to
    finish on their own (as fire-and-forget request work is)."""
    start = time.perf_counter()
    made = 0
    keep = set()
    while True:
        due = int((time.perf_counter() - start) * TASK_RATE)
        for _ in range(min(due - made, TASK_RATE)):
            t = asyncio.create_task(tiny())
            keep.add(t)
            t.add_done_callback(keep.discard)
        made = max(made, due)
        await asyncio.sleep(TASK_TICK)


async def main(port, mode):
    app = web.Application()
    app.router.add_get("/", make_syscalls() if mode == "syscalls" else hello)
    app.router.add_get("/stall", stall)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
    await site.start()
    if mode == "tasks":
        asyncio.get_running_loop().create_task(spawner())
    port = site._server.sockets[0].getsockname()[1]
    print("ready %d" % port, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[2] not in ("hello", "syscalls", "tasks"):
        sys.exit(__doc__)
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
