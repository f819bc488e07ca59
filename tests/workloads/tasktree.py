"""asyncio service with a known tree of tasks, for `asyncprobe tasks` tests.

Usage: python tasktree.py MARK

Task "parent" awaits task "child", which awaits leaf() in its coroutine
chain; three "idle-N" tasks wait on an Event; "gatherer" gathers tasks
"g-0" and "g-1", "grouper" runs "tg-0" and "tg-1" in a TaskGroup (3.11+).
Prints "ready" when the tree is built, then sleeps.  Lines carry
"# LINE:<name>" markers.
"""
import asyncio
import sys


async def leaf(ev):
    await ev.wait()  # LINE:leaf


async def child_work(ev):
    await leaf(ev)  # LINE:child


async def parent_work(ev):
    await asyncio.create_task(child_work(ev), name="child")  # LINE:parent


async def gatherer(ev):
    await asyncio.gather(*[asyncio.create_task(leaf(ev), name="g-%d" % i)
                           for i in range(2)])  # LINE:gather


async def grouper(ev):
    async with asyncio.TaskGroup() as tg:  # LINE:group
        for i in range(2):
            tg.create_task(leaf(ev), name="tg-%d" % i)


async def main():
    ev = asyncio.Event()
    parent = asyncio.create_task(parent_work(ev), name="parent")
    more = [asyncio.create_task(gatherer(ev), name="gatherer")]
    if hasattr(asyncio, "TaskGroup"):
        more.append(asyncio.create_task(grouper(ev), name="grouper"))
    idle = [asyncio.create_task(leaf(ev), name="idle-%d" % i) for i in range(3)]
    await asyncio.sleep(0.05)
    print("ready", flush=True)
    await asyncio.sleep(60)
    ev.set()
    await asyncio.gather(parent, *idle, *more)


if __name__ == "__main__":
    asyncio.run(main())
