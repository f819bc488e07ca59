"""asyncio service that misbehaves on cue, for asyncprobe's tests.

Usage: python misbehave.py MODE TRIGGER_FILE [--uvloop] [--thread] [--busy]

The loop idles (awaiting timers and a socket) until TRIGGER_FILE exists,
then runs MODE's bad call REPEAT times, and keeps idling.  With --busy it
never idles: a task yields to it all the time, so that it never sleeps in
its selector (a saturated service's loop).  Each bad line
carries a "# LINE:<mode>" marker that the tests look up, so the tests
assert exact lines without hard-coding numbers.
"""
import asyncio
import os
import socket
import subprocess
import sys
import threading
import time

REPEAT = 3
PAUSE = 0.3  # seconds of healthy loop between two bad calls


def burn(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:  # LINE:cpu
        pass


def nap(seconds):
    time.sleep(seconds)  # LINE:sleep


def late_server(listener, delay):
    conn, _ = listener.accept()
    time.sleep(delay)
    conn.sendall(b"x")
    conn.close()


def recv_late(delay):
    """A blocking TCP client whose peer answers late."""
    listener = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=late_server, args=(listener, delay), daemon=True).start()
    sock = socket.create_connection(listener.getsockname())
    try:
        return sock.recv(1)  # LINE:recv
    finally:
        sock.close()
        listener.close()


def read_pipe(delay):
    r, w = os.pipe()

    def writer():
        time.sleep(delay)
        os.write(w, b"y")

    threading.Thread(target=writer, daemon=True).start()
    try:
        return os.read(r, 1)  # LINE:pipe
    finally:
        os.close(r)
        os.close(w)


def run_child(seconds):
    subprocess.run(["sleep", str(seconds)], check=True)  # LINE:subprocess


LOCK = threading.Lock()
HOLD_FOR = [0.0]
WANT_HELD = threading.Event()


def holder():
    """Started before the trigger: holds LOCK whenever asked to."""
    while True:
        WANT_HELD.wait()
        WANT_HELD.clear()
        with LOCK:
            time.sleep(HOLD_FOR[0])


def take_lock(seconds):
    HOLD_FOR[0] = seconds
    WANT_HELD.set()
    while not LOCK.locked():  # short sleeps until the holder has it
        time.sleep(0.001)
    with LOCK:  # LINE:lock
        pass


GARBAGE = []


async def make_garbage():
    """A large heap of reference cycles, so that a full collection takes
    a few hundred ms on the loop thread; made in short slices, so that
    making it is no stall of its own."""
    import gc

    gc.disable()  # only the explicit collection below, at a known line
    for _ in range(60):
        for _ in range(10_000):
            a, b = [], []
            a.append(b)
            b.append(a)
            GARBAGE.append(a)
        await asyncio.sleep(0)


def collect_garbage():
    import gc

    GARBAGE.clear()
    gc.collect()  # LINE:gc


async def garbage_then_collect():
    await make_garbage()
    collect_garbage()


WANT_CRUNCH = threading.Event()
CRUNCH_N = [1_000_000]


def name_this_thread(name):
    """Set the OS thread name (what /proc and asyncprobe show)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(15, name.encode(), 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass


def cruncher():
    """A worker thread that, when asked, holds the GIL for ~250 ms in one
    C call (sum over a range checks no eval breaker): the loop starves."""
    name_this_thread("cruncher")
    print("cruncher %d" % threading.get_native_id(), flush=True)
    best = float("inf")
    for _ in range(3):  # the fastest of three: a busy moment misleads
        t = time.perf_counter()
        sum(range(CRUNCH_N[0]))
        best = min(best, time.perf_counter() - t)
    CRUNCH_N[0] = int(CRUNCH_N[0] * 0.25 / max(best, 1e-4))
    while True:
        WANT_CRUNCH.wait()
        WANT_CRUNCH.clear()
        sum(range(CRUNCH_N[0]))  # LINE:starve


BAD = {
    "cpu": lambda: burn(0.25),
    "sleep": lambda: nap(0.25),
    "recv": lambda: recv_late(0.25),
    "pipe": lambda: read_pipe(0.25),
    "subprocess": lambda: run_child(0.25),
    "lock": lambda: take_lock(0.25),
    "clean": lambda: None,
    "starve": WANT_CRUNCH.set,
    "gc": garbage_then_collect,
    # a loop that hangs for a while: reported while it is still going on
    "hang": lambda: burn(2.5),
    "deadlock": lambda: take_lock(2.5),
}
REPEATS = {"hang": 1, "deadlock": 1}


async def handler(mode):
    bad = BAD[mode]()
    if asyncio.iscoroutine(bad):
        await bad


async def ticker():
    while True:
        await asyncio.sleep(0.01)


async def spinner():
    while True:
        await asyncio.sleep(0)


def noise():
    """A worker thread that selects and sleeps: not a loop, so its 100 ms
    sleeps between selects must not be findings.  (It computes nothing:
    the GIL it would hold makes the loop wait, a real finding.)"""
    import select

    r, _ = os.pipe()
    while True:
        select.select([r], [], [], 0.05)
        time.sleep(0.1)


async def main(mode, trigger, quiet=False):
    tick = asyncio.ensure_future(ticker())
    if "--busy" in sys.argv:
        spin = asyncio.ensure_future(spinner())  # noqa: F841 (kept running)
    while not os.path.exists(trigger):
        await asyncio.sleep(0.02)
    for _ in range(REPEATS.get(mode, REPEAT)):
        # in a task of its own, named, as a request handler would be
        await asyncio.ensure_future(handler(mode)) if "--unnamed" in sys.argv else \
            await asyncio.get_running_loop().create_task(handler(mode), name="bad-handler")
        await asyncio.sleep(PAUSE)
    if quiet:
        return
    if "--two-loops" in sys.argv:
        await asyncio.sleep(1.0)  # let the other loop finish too
    # a clean service only awaits; keep idling until killed
    print("done", flush=True)
    await asyncio.sleep(3600)
    tick.cancel()


def run(mode, trigger, use_uvloop):
    if use_uvloop:
        import uvloop

        loop = uvloop.new_event_loop()
        asyncio.set_event_loop(loop)
        loop.run_until_complete(main(mode, trigger))
    else:
        asyncio.run(main(mode, trigger))


if __name__ == "__main__":
    mode, trigger = sys.argv[1], sys.argv[2]
    if "--poll-first" in sys.argv:
        # poll() on this thread before its loop starts: not a loop yet
        for _ in range(3):
            subprocess.run(["true"], capture_output=True, check=True)
            time.sleep(0.4)
    if mode == "starve":
        threading.Thread(target=cruncher, daemon=True, name="cruncher").start()
    if mode in ("lock", "deadlock"):
        threading.Thread(target=holder, daemon=True, name="holder").start()
    if "--noise" in sys.argv:
        threading.Thread(target=noise, daemon=True, name="noise").start()
    if "--two-loops" in sys.argv:
        threading.Thread(target=lambda: asyncio.run(main(mode, trigger, quiet=True)),
                         daemon=True, name="second-loop").start()
    if "--thread" in sys.argv:
        t = threading.Thread(target=run, args=(mode, trigger, "--uvloop" in sys.argv),
                             name="loop-thread")
        t.start()
        t.join()
    else:
        run(mode, trigger, "--uvloop" in sys.argv)
