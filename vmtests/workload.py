"""The asyncio service the VM tests watch: once its trigger file exists,
the loop thread stalls on the CPU, then blocks in time.sleep.  The lines
the tests look for carry "# LINE:<name>" markers.

Usage: python3.11 workload.py TRIGGER_FILE; says "ready", then "done".
"""
import asyncio
import os
import sys
import time


def vm_stall():
    end = time.monotonic() + 0.4
    while time.monotonic() < end: pass  # LINE:stall  # noqa: E701


def vm_block():
    time.sleep(0.3)  # LINE:block


async def main(trigger):
    print("ready", flush=True)
    while not os.path.exists(trigger):
        await asyncio.sleep(0.05)
    vm_stall()
    await asyncio.sleep(0.3)
    vm_block()
    await asyncio.sleep(0.3)
    print("done", flush=True)
    await asyncio.sleep(0.3)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
