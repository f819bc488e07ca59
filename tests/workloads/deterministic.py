"""A deterministic asyncio program: its stdout depends only on its code.

Usage: python deterministic.py TRIGGER_FILE

It prints "ready", waits for TRIGGER_FILE, then does what asyncprobe
watches (tasks by the thousand, stalls, blocking calls, garbage
collections, threads, a subprocess, exceptions, a task leak) and prints
digests of every result.  The reliability tests compare its output with
and without asyncprobe attached: byte for byte.
"""
import asyncio
import gc
import hashlib
import os
import subprocess
import sys
import threading
import time

DIGEST = hashlib.sha256()


def emit(label, value):
    DIGEST.update(repr((label, value)).encode())
    print(label, value, flush=True)


def crunch(n):
    """CPU on the loop thread: a stall (a few hundred ms)."""
    h = 0
    for i in range(n):
        h = (h * 31 + i) % 1_000_000_007
    return h


async def worker(i, q):
    await asyncio.sleep(0.001 * (i % 5))
    await q.put(i * i)
    return hashlib.md5(str(i).encode()).hexdigest()[:8]


async def failing(i):
    await asyncio.sleep(0)
    raise ValueError("task %d failed" % i)


def in_thread(n):
    return sum(k * k for k in range(n))


async def main(trigger):
    print("ready", flush=True)
    while not os.path.exists(trigger):
        await asyncio.sleep(0.02)
    loop = asyncio.get_running_loop()

    # task churn: thousands of short tasks, gathered
    for rnd in range(5):
        q = asyncio.Queue()
        res = await asyncio.gather(*(worker(i, q) for i in range(2000)))
        total = 0
        while not q.empty():
            total += q.get_nowait()
        emit("round %d" % rnd, (total, hashlib.sha1("".join(res).encode()).hexdigest()))

    # exceptions through tasks
    outs = await asyncio.gather(*(failing(i) for i in range(50)), return_exceptions=True)
    emit("errors", sorted(str(e) for e in outs)[:3])

    # a stall and a blocking call on the loop thread
    emit("crunch", crunch(2_000_000))
    await asyncio.sleep(0)
    time.sleep(0.15)
    emit("slept", True)

    # threads and the default executor
    vals = await asyncio.gather(*(loop.run_in_executor(None, in_thread, 10_000 + k)
                                  for k in range(8)))
    emit("threads", vals)
    t = threading.Thread(target=lambda: emit("raw thread", in_thread(5000)))
    t.start()
    t.join()

    # garbage collection of reference cycles
    gc.collect()
    cycles = []
    for i in range(50_000):
        a = [i]
        a.append(a)
        cycles.append(a)
    del cycles
    emit("collected>0", gc.collect() > 0)

    # a subprocess, awaited
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "print(sum(range(1000)))", stdout=subprocess.PIPE)
    out, _ = await proc.communicate()
    emit("child", (out.decode().strip(), proc.returncode))

    # pending tasks left behind, then cancelled
    stuck = [asyncio.ensure_future(asyncio.sleep(3600)) for _ in range(100)]
    await asyncio.sleep(0.3)
    for s in stuck:
        s.cancel()
    res = await asyncio.gather(*stuck, return_exceptions=True)
    emit("cancelled", sum(isinstance(r, asyncio.CancelledError) for r in res))

    emit("digest", DIGEST.hexdigest())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
    print("end", flush=True)
