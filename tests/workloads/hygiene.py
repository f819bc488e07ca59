"""asyncio service with the anti-patterns the guides warn about, for
asyncprobe's hygiene findings; or the same work done properly.  The lines
the tests look for carry "# LINE:<name>" markers; the functions have
unique names.

Usage: python hygiene.py dirty|clean SECONDS
  dirty  opens a TCP connection to itself 25 times a second and closes
         none (both ends stay open); cancels a worker that swallows
         CancelledError and runs on; calls a coroutine function without
         await as often (the coroutine is dropped, never run); twice,
         starts a task it keeps no reference to, which the garbage
         collector destroys while it waits, and one that fails with
         nobody to retrieve its exception; a task that awaits an event
         nobody sets, with no timeout
  clean  the same with every connection closed, a worker that stops
         when cancelled (after a short cleanup), the coroutine awaited,
         the tasks kept, cancelled and awaited, the failure caught; and,
         3.11+, timeouts that expire all the time (asyncio.timeout
         cancels and uncancels)
Both run two heartbeat tasks that sleep in one await again and again
(0.5 s and 1.5 s): awaits that end are not long ones.
Says "ready" at the start; exits after SECONDS.
"""
import asyncio
import gc
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


async def forgotten_job():  # LINE:forgotten_job
    # waits on a future only this task knows: once it is dropped, the
    # two only keep each other alive, and the collector destroys both
    await asyncio.get_running_loop().create_future()


async def failing_job():  # LINE:failing_job
    raise KeyError("nobody will see this")


def fire_and_forget(loop):
    loop.create_task(forgotten_job(), name="lost-job")
    loop.create_task(failing_job(), name="failing-job")


async def keep_and_await(loop):
    lost = loop.create_task(forgotten_job(), name="lost-job")
    failing = loop.create_task(failing_job(), name="failing-job")
    await asyncio.sleep(0)
    lost.cancel()
    for t in (lost, failing):
        try:
            await t
        except (asyncio.CancelledError, KeyError):
            pass


async def hung_fetch():  # LINE:hung_fetch
    never = asyncio.Event()
    await never.wait()  # LINE:long_await


async def heartbeat(period):
    while True:
        await asyncio.sleep(period)


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
    beats = [loop.create_task(heartbeat(p), name="heartbeat-%g" % p) for p in (0.5, 1.5)]
    if mode == "dirty":
        beats.append(loop.create_task(hung_fetch(), name="hung-fetch"))
    print("ready", flush=True)
    start = loop.time()
    forget_at = [start + 3, start + 5]
    while loop.time() < start + seconds:
        if forget_at and loop.time() > forget_at[0]:
            forget_at.pop(0)
            if mode == "dirty":
                fire_and_forget(loop)
                await asyncio.sleep(0.01)  # both ran a step
                gc.collect()
            else:
                await keep_and_await(loop)
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
    for t in beats:
        t.cancel()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
