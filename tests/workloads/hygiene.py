"""asyncio service with the anti-patterns the guides warn about, for
asyncprobe's hygiene findings; or the same work done properly.  The lines
the tests look for carry "# LINE:<name>" markers; the functions have
unique names.

Usage: python hygiene.py dirty|clean SECONDS
  dirty  opens a TCP connection to itself 25 times a second and closes
         none (both ends stay open); cancels a worker that swallows
         CancelledError and runs on; calls a coroutine function without
         await as often (the coroutine is dropped, never run)
  clean  the same with every connection closed, a worker that stops
         when cancelled (after a short cleanup) and the coroutine
         awaited; and, 3.11+, timeouts that expire all the time
         (asyncio.timeout cancels and uncancels)
Says "ready" at the start; exits after SECONDS.
"""
import asyncio
import socket
import sys
import warnings

# the interpreter's own warning, once per place, is not what is tested
warnings.simplefilter("ignore", RuntimeWarning)


def leaky_connect(srv, keep):
    keep.append(socket.create_connection(srv.getsockname()))
    keep.append(srv.accept()[0])


def tidy_connect(srv):
    with socket.create_connection(srv.getsockname()):
        srv.accept()[0].close()


async def refresh_cache():  # LINE:refresh_cache
    await asyncio.sleep(0)


def careless_caller():
    refresh_cache()  # LINE:never_awaited


async def careful_caller():
    await refresh_cache()


async def stubborn_worker():
    while True:
        try:
            await asyncio.sleep(0.05)  # LINE:cancel_ignored
        except asyncio.CancelledError:
            pass  # the anti-pattern: cancellation swallowed


async def polite_worker():
    try:
        while True:
            await asyncio.sleep(0.05)
    finally:
        await asyncio.sleep(0.2)  # cleanup, then the CancelledError goes on


async def impatient_waiter():
    ev = asyncio.Event()
    while True:
        if hasattr(asyncio, "timeout"):  # 3.11+
            try:
                async with asyncio.timeout(0.03):
                    await ev.wait()
            except TimeoutError:
                pass
        try:
            await asyncio.wait_for(ev.wait(), 0.03)
        except asyncio.TimeoutError:
            pass


async def main(mode, seconds):
    loop = asyncio.get_running_loop()
    srv = socket.create_server(("127.0.0.1", 0), backlog=1024)
    keep = []
    worker = loop.create_task(stubborn_worker() if mode == "dirty" else polite_worker(),
                              name="the-worker")
    waiter = loop.create_task(impatient_waiter(), name="the-waiter")
    print("ready", flush=True)
    start = loop.time()
    while loop.time() < start + seconds:
        if mode == "dirty":
            leaky_connect(srv, keep)
            careless_caller()
        else:
            tidy_connect(srv)
            await careful_caller()
        if worker and loop.time() > start + 1:
            worker.cancel()
            worker = None
        await asyncio.sleep(0.04)
    waiter.cancel()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
