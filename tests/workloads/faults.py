"""asyncio service that does what services do to a profiler: exec, fork,
spawn threads, exit.  For asyncprobe's reliability tests.

Usage: python faults.py MODE TRIGGER_FILE

The loop idles until TRIGGER_FILE exists, then runs MODE.  Every bad call
of the loop thread carries a "# LINE:<name>" marker the tests look up.
Lines on stdout: "ready", then what MODE says ("exec T", "exit T" with
T = time.monotonic(), which is CLOCK_MONOTONIC like the tests' clock),
then "done".
"""
import asyncio
import os
import sys
import threading
import time


def say(*words):
    print(*words, flush=True)


def nap_before_exec():
    time.sleep(0.25)  # LINE:exec


def nap_after_exec():
    time.sleep(0.25)  # LINE:after_exec


def parent_nap():
    time.sleep(0.25)  # LINE:parent


def child_nap():
    time.sleep(0.25)  # LINE:child


def thread_nap():
    time.sleep(0.25)  # LINE:threads


async def do_exec():
    nap_before_exec()
    await asyncio.sleep(0.2)
    say("exec", time.monotonic())
    # a different program in the same process: a plain sleep, no loop
    os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(3)"])


async def do_reexec():
    nap_before_exec()
    await asyncio.sleep(0.2)
    say("exec", time.monotonic())
    # the same service started again in this process (an in-place restart)
    os.execv(sys.executable, [sys.executable, __file__, "after_exec", sys.argv[2]])


async def do_after_exec():
    # the program that reexec started: its own trigger
    while not os.path.exists(sys.argv[2] + ".again"):
        await asyncio.sleep(0.02)
    nap_after_exec()


async def do_fork():
    for _ in range(3):
        pid = os.fork()
        if pid == 0:
            # the child is a copy of the loop thread: it must not count
            for _ in range(3):
                child_nap()
            os._exit(0)
        parent_nap()
        await asyncio.sleep(0.2)
        os.waitpid(pid, 0)


async def do_threads():
    stop = threading.Event()

    def short_lived():
        time.sleep(0.005)

    def spawner():
        # ~200 threads/s come and go while the loop misbehaves
        while not stop.is_set():
            ts = [threading.Thread(target=short_lived) for _ in range(10)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            time.sleep(0.02)

    sp = threading.Thread(target=spawner)
    sp.start()
    for _ in range(3):
        await asyncio.sleep(0.3)
        thread_nap()
    await asyncio.sleep(0.3)
    stop.set()
    sp.join()


async def do_exit():
    await asyncio.sleep(0.5)
    say("exit", time.monotonic())
    os._exit(0)


MODES = {"exec": do_exec, "reexec": do_reexec, "after_exec": do_after_exec,
         "fork": do_fork, "threads": do_threads, "exit": do_exit}


async def main(mode, trigger):
    say("ready")
    while mode != "after_exec" and not os.path.exists(trigger):
        await asyncio.sleep(0.02)
    await MODES[mode]()
    say("done")
    await asyncio.sleep(0.5)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
