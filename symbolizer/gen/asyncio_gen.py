# SPDX-License-Identifier: MIT
"""Print one row of symbolizer/pytasks.c for the interpreter running this.

The _asyncio module's objects and state are private to its C file, so
their layout is measured here, inside the real interpreter: build objects
whose field values are known, then find those values in their memory.
Run it with each interpreter (python3.X symbolizer/gen/asyncio_gen.py) and
commit the row; the tool itself never guesses an offset.
"""
import asyncio
import ctypes
import sys
import weakref

PTR = 8
MASK = ~7  # tagged references (3.14+) carry flags in the low bits


def readable():
    spans = []
    with open("/proc/self/maps") as f:
        for line in f:
            lo_hi, perms = line.split()[:2]
            if perms.startswith("r"):
                lo, hi = (int(x, 16) for x in lo_hi.split("-"))
                spans.append((lo, hi))
    return spans


SPANS = readable()


def mem(addr, size):
    if not any(lo <= addr and addr + size <= hi for lo, hi in SPANS):
        raise ValueError("unreadable %#x" % addr)
    return ctypes.string_at(addr, size)


def words(addr, size):
    b = mem(addr, size)
    return [int.from_bytes(b[i:i + PTR], "little") for i in range(0, size - PTR + 1, PTR)]


def find_ptr(addr, size, value, masked=False):
    for i, w in enumerate(words(addr, size)):
        if w == value or (masked and (w & MASK) == value):
            return i * PTR
    return -1


def chain(obj, target, size=256):
    """Offsets (a, b): *(obj + a) == target, or *(*(obj + a) + b) == target.
    a may be negative: 3.11+ keep a managed dict / values pointer before
    the object."""
    base = id(obj) - 4 * PTR
    for i, w in enumerate(words(base, size)):
        if w == target:
            return i * PTR - 4 * PTR, -1
    for i, w in enumerate(words(base, size)):
        w &= MASK  # 3.12 tags a values pointer in its low bit
        if w < 4096:
            continue
        try:
            inner = words(w, 128)
        except Exception:
            continue
        for j, v in enumerate(inner):
            if v == target:
                return i * PTR - 4 * PTR, j * PTR
    return None


def main():
    v = sys.version_info
    row = {}
    api = ctypes.pythonapi
    get_interp = getattr(api, "PyInterpreterState_Get", None) or \
        api._PyInterpreterState_Get  # 3.8
    get_interp.restype = ctypes.c_void_p
    api.PyModule_GetState.restype = ctypes.c_void_p
    api.PyModule_GetState.argtypes = [ctypes.py_object]

    interp = get_interp()
    row["interp_modules"] = find_ptr(interp, 16384, id(sys.modules))

    import _asyncio
    row["mod_dict"] = find_ptr(id(_asyncio), 64, id(_asyncio.__dict__))
    state = api.PyModule_GetState(_asyncio)
    row["mod_state"] = -1
    if state:
        row["mod_state"] = find_ptr(id(_asyncio), 64, state)

    s = {object(), object(), object()}
    row["set_used"] = words(id(s), 64).index(3) * PTR
    so = words(id(s), 64)
    # the table of a small set is its inline smalltable: mask 7
    row["set_mask"] = so.index(7, row["set_used"] // PTR + 1) * PTR
    row["set_table"] = row["set_mask"] + PTR

    ws = weakref.WeakSet()
    ws.add(asyncio)  # a module: weak-referenceable
    # WeakSet.__init__ sets .data first: attribute 0 of its instance
    # values.  <= 3.10 keep a real dict at tp_dictoffset (read as a dict);
    # 3.11/3.12 point to a values array before the object; 3.13+ keep the
    # values inline after it
    if v < (3, 11):
        row["ws_dict"], row["ws_data_a"], row["ws_data_b"] = \
            type(ws).__dictoffset__, -1, -1
    else:
        row["ws_dict"] = -1
        row["ws_data_a"], row["ws_data_b"] = chain(ws, id(ws.data))
    ref = next(iter(ws.data))
    row["wr_object"] = find_ptr(id(ref), 48, id(asyncio))

    class Sub(asyncio.Task):
        pass
    row["type_base"] = find_ptr(id(Sub), 1024, id(asyncio.Task))
    row["type_name"] = 24

    loop = asyncio.new_event_loop()

    async def leaf(fut):
        await fut

    async def middle(fut):
        x = 1
        await leaf(fut)
        return x

    async def outer(t):
        await t

    fut = loop.create_future()
    if state:
        before = words(state, 512)
    task = loop.create_task(middle(fut))
    k = 5
    extra = [loop.create_task(middle(loop.create_future())) for _ in range(k)]
    waiter = loop.create_task(outer(task))
    if state:
        after = words(state, 512)
    loop.run_until_complete(asyncio.sleep(0))
    loop.run_until_complete(asyncio.sleep(0))

    row["fut_loop"] = find_ptr(id(task), 256, id(loop))
    row["task_coro"] = find_ptr(id(task), 256, id(task.get_coro()))
    row["task_fut_waiter"] = find_ptr(id(waiter), 256, id(task))
    name = task.get_name()
    nm = find_ptr(id(task), 256, id(name))
    if nm < 0:
        # 3.14+: an unnamed task keeps its number as an int until asked
        for off in range(0, 256, PTR):
            p = words(id(task) + off, PTR)[0]
            if p and p == id(task._name if hasattr(task, "_name") else None):
                nm = off
    row["task_name"] = nm
    if state:
        row["st_counter"] = -1
        for i, (a, b) in enumerate(zip(before, after)):
            if b - a == k + 2 and b < 1 << 40:
                row["st_counter"] = i * PTR
                break
        tasks_mod = sys.modules["asyncio.tasks"]
        row["st_scheduled"] = find_ptr(state, 512, id(tasks_mod._scheduled_tasks)) \
            if hasattr(tasks_mod, "_scheduled_tasks") else -1
        row["st_eager"] = find_ptr(state, 512, id(tasks_mod._eager_tasks)) \
            if hasattr(tasks_mod, "_eager_tasks") else -1
    else:
        row["st_counter"] = row["st_scheduled"] = row["st_eager"] = -1

    # fut_state: the int that goes 0 -> 2 when a future finishes
    f2 = loop.create_future()
    w0 = mem(id(f2), 256)
    f2.set_result(None)
    w1 = mem(id(f2), 256)
    row["fut_state"] = -1
    for off in range(0, 256, 4):
        a = int.from_bytes(w0[off:off + 4], "little")
        b = int.from_bytes(w1[off:off + 4], "little")
        if a == 0 and b == 2:
            row["fut_state"] = off
            break

    f3 = loop.create_future()
    exc = ValueError("measured")
    f3.set_exception(exc)
    row["fut_exception"] = find_ptr(id(f3), 256, id(exc))
    f3.exception()

    coro = task.get_coro()
    row["coro_code"] = find_ptr(id(coro), 512, id(coro.cr_code), masked=True)
    row["coro_stack"] = row["coro_stack_kind"] = row["coro_localsplus"] = -1
    row["coro_yf_back"] = 0
    if v >= (3, 11):
        # the coroutine a suspended coroutine awaits is its frame's top of
        # stack; find how the frame says where that is
        inner = coro.cr_await
        pos = find_ptr(id(coro), 1024, id(inner), masked=True)
        # the frame's own code pointer (3.11 also keeps gi_code before it)
        for i, w in enumerate(words(id(coro), pos)):
            if (w & MASK) == id(coro.cr_code):
                row["coro_code"] = i * PTR
        row["coro_yf_back"] = 1
        for back in (1, 2, 3):
            sp = find_ptr(id(coro), pos, id(coro) + pos + back * PTR)
            if sp >= 0:
                row["coro_stack"], row["coro_stack_kind"] = sp, 2
                row["coro_yf_back"] = back
                break
        else:
            # int stacktop: localsplus[stacktop - 1] is the awaited object;
            # the int sits in the frame header between code and localsplus
            b = mem(id(coro), pos)
            for off in range(row["coro_code"], pos, 4):
                n = int.from_bytes(b[off:off + 4], "little", signed=True)
                if 0 < n < 64:
                    lp = pos - (n - 1) * PTR
                    nlocals = len(coro.cr_code.co_varnames) + \
                        len(coro.cr_code.co_cellvars) + len(coro.cr_code.co_freevars)
                    if lp > off and lp - off <= 64 and pos - lp >= nlocals * PTR:
                        row["coro_stack"], row["coro_stack_kind"] = off, 1
                        row["coro_localsplus"] = lp
                        break
    # 3.11+: the count of cancel() calls not yet uncancel()ed, an int that
    # goes 0 -> 2 with two cancels of a task that awaits (its future is
    # cancelled instead, so nothing else of the task changes)
    row["task_cancels"] = -1
    if v >= (3, 11):
        t0 = mem(id(task), 256)
        task.cancel()
        task.cancel()
        t1 = mem(id(task), 256)
        for off in range(0, 256, 4):
            a = int.from_bytes(t0[off:off + 4], "little")
            b = int.from_bytes(t1[off:off + 4], "little")
            if a == 0 and b == 2 and task.cancelling() == 2:
                row["task_cancels"] = off
                break
    for t in [task, waiter] + extra:
        t.cancel()
    fut.cancel()
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()

    print("\t/* python %d.%d.%d, measured by symbolizer/gen/asyncio_gen.py */"
          % (v.major, v.minor, v.micro))
    print("\t{")
    print("\t\t.major = %d, .minor = %d," % (v.major, v.minor))
    for key, val in row.items():
        print("\t\t.%s = %d," % (key, val))
    print("\t},")


main()
