#!/usr/bin/python3
"""Write the fuzzers' seed corpora (tests/fuzz/corpus/NAME/) from real data.

- linetable, debug_offsets: the real interpreters' tables and
  _Py_DebugOffsets images kept as unit-test fixtures;
- fdinfo: /proc/net lines of sockets made for the purpose (tcp, tcp6, udp,
  udp6, unix with a path, abstract, unnamed);
- record: records of real runs (asyncprobe record on misbehave.py), whole
  and cut short;
- elf: small real ELF objects: compiled probes, the symbols and notes of a
  libpython, an _asyncio module with its .AsyncioDebug section;
- pyobjects, pytasks: snapshots of real interpreters 3.8-3.15 (pyenv
  builds, Debian's python3.11, the sid chroot's 3.13-3.15): the harness
  reads a live interpreter as it reads an input (FUZZ_GEN), every read is
  kept, and pack() lays them out as the harness's memory image.  Each seed
  is checked: the harness must find in it what it found in the process.

Run as root after `make fuzz-build` (and `make` for records); commit what
it writes.  Paths of the build machine are kept out: the workloads are
compiled as /srv/app files, records name the workload as a service's.
Usage: gen_seeds.py [linetable|debug_offsets|fdinfo|record|elf|pyobjects|pytasks]...
"""
import glob
import gzip
import hashlib
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(ROOT, "tests", "unit", "fixtures")
OUT = os.path.join(HERE, "corpus")
FUZZ = os.path.join(ROOT, ".output-fuzz")
CHROOT = "/var/cache/asyncprobe/sid-chroot"  # tests/setup/sid-chroot.sh


def put(name, data):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, hashlib.sha1(data).hexdigest()[:16])
    with open(path, "wb") as f:
        f.write(data)


def c_arrays(path, ctype="uint8_t"):
    text = open(path).read()
    return {m.group(1): m.group(2) for m in re.finditer(
        r"static const (?:%s|struct lt_expect) (\w+)\[\] = \{(.*?)\};" % ctype, text, re.S)}


def c_bytes(body):
    return bytes(int(x, 0) for x in re.findall(r"0x[0-9a-fA-F]+|\d+", body))


def linetable():
    """kind (byte % 3 + 1), co_firstlineno, N, N offsets (i64), table"""
    kinds = {"PY_LT_LNOTAB": 0, "PY_LT_310": 1, "PY_LT_LOCATIONS": 2}
    for path in sorted(glob.glob(os.path.join(FIXTURES, "linetable_3_*.h"))):
        arrays = c_arrays(path)
        for m in re.finditer(r'\{ "[^"]*", (PY_LT_\w+), (-?\d+), (\w+), \d+, (\w+), \d+ \}',
                             open(path).read()):
            tab = c_bytes(arrays[m.group(3)])
            offsets = [int(o) for o in re.findall(r"\{(-?\d+), -?\d+\}", arrays[m.group(4)])]
            offsets = offsets[::max(1, len(offsets) // 15)][:15] + [len(tab) * 8]
            put("linetable", bytes([kinds[m.group(1)]]) + struct.pack("<iB", int(m.group(2)), len(offsets))
                + b"".join(struct.pack("<q", o) for o in offsets) + tab)


def debug_offsets():
    for path in sorted(glob.glob(os.path.join(FIXTURES, "debug_offsets_3_*.h"))):
        for body in c_arrays(path).values():
            put("debug_offsets", c_bytes(body))


def fdinfo():
    """which parser (tcp/udp, tcp6/udp6, unix), then the line"""
    socks = []
    for fam, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        lst = socket.socket(fam, socket.SOCK_STREAM)
        lst.bind((host, 0))
        lst.listen()
        conn = socket.create_connection(lst.getsockname()[:2])
        udp = socket.socket(fam, socket.SOCK_DGRAM)
        udp.bind((host, 0))
        udp.connect(lst.getsockname()[:2])
        socks += [lst, conn, lst.accept()[0], udp]
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as d:
        os.chdir(d)  # a relative name: no path of this machine in the line
        try:
            for name in ("app.sock", "\0asyncprobe-seed"):
                u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                u.bind(name)
                u.listen()
                socks.append(u)
            socks += socket.socketpair()
            inodes = {str(os.fstat(s.fileno()).st_ino) for s in socks}
            for which, path in ((0, "/proc/net/tcp"), (0, "/proc/net/udp"), (1, "/proc/net/tcp6"),
                                (1, "/proc/net/udp6"), (2, "/proc/net/unix")):
                for line in open(path).read().splitlines()[1:]:
                    if inodes & set(line.split()):
                        put("fdinfo", bytes([which]) + line.encode())
        finally:
            os.chdir(cwd)
            for s in socks:
                s.close()


def record():
    probe = os.path.join(ROOT, "asyncprobe")
    wl = os.path.join(ROOT, "tests", "workloads", "misbehave.py")
    for mode in ("cpu", "sleep", "recv"):
        trigger = "/tmp/fuzz-seed-trigger-%s" % mode
        p = subprocess.Popen(["/usr/bin/python3.11", wl, mode, trigger],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            rec = "/tmp/fuzz-seed-%s.aprec" % mode
            r = subprocess.Popen([probe, "record", "-p", str(p.pid), "-d", "3", "-o", rec],
                                 stderr=subprocess.DEVNULL)
            time.sleep(0.8)
            open(trigger, "w").close()
            r.wait(30)
            # paths of this machine out: the workload as a service's
            text = gzip.decompress(open(rec, "rb").read())
            text = text.replace(os.path.dirname(wl).encode(), b"/srv/app")
            text = text.replace(probe.encode(), b"asyncprobe")
            text = text.replace(rec.encode(), b"incident.aprec")
            data = gzip.compress(text, mtime=0)
            put("record", data)
            put("record", data[:len(data) // 2])  # a recorder killed mid-run
            # the first events alone, gzip'd again
            lines = gzip.decompress(data).splitlines(keepends=True)
            put("record", gzip.compress(b"".join(lines[:6]), mtime=0))
            os.unlink(rec)
        finally:
            p.kill()
            p.wait()
            if os.path.exists(trigger):
                os.unlink(trigger)


PROBE_C = r'''
int _PyRuntime[4] __attribute__((section(".PyRuntime")));
int Py_Version = 0x030b02f0;
unsigned long long debug[13] __attribute__((section(".AsyncioDebug"))) = { 256, 136 };
int main(void)
{
	/* a USDT probe as <sys/sdt.h> writes one */
	__asm__ __volatile__("990: nop\n"
		".pushsection .note.stapsdt,\"?\",\"note\"\n"
		".balign 4\n.4byte 992f-991f, 994f-993f, 3\n"
		"991: .asciz \"stapsdt\"\n992: .balign 4\n"
		"993: .8byte 990b\n.8byte _.stapsdt.base\n.8byte 0\n"
		".asciz \"python\"\n.asciz \"function__entry\"\n.asciz \"8@%%rdi\"\n"
		"994: .balign 4\n.popsection\n"
		".ifndef _.stapsdt.base\n"
		".pushsection .stapsdt.base,\"aG\",\"progbits\",.stapsdt.base,comdat\n"
		".weak _.stapsdt.base\n.hidden _.stapsdt.base\n_.stapsdt.base: .space 1\n"
		".size _.stapsdt.base, 1\n.popsection\n.endif\n" :: "D"(debug));
	return _PyRuntime[0] + (int)debug[0];
}
'''


def elf():
    with tempfile.TemporaryDirectory() as d:
        src, exe = os.path.join(d, "probe.c"), os.path.join(d, "probe")
        with open(src, "w") as f:
            f.write(PROBE_C)
        for flags in (["-O0"], ["-O2", "-s"], ["-O1", "-shared", "-fPIC"]):
            subprocess.run(["cc", *flags, src, "-o", exe], check=True)
            put("elf", open(exe, "rb").read())
        # a libpython's symbols, sections and USDT notes without its code
        # and data; an _asyncio module whole
        lib = os.path.join(CHROOT, "usr/lib/x86_64-linux-gnu/libpython3.14.so.1.0")
        mod = glob.glob(os.path.join(CHROOT, "usr/lib/python3.14/lib-dynload/_asyncio.*.so"))
        if os.path.exists(lib):
            keep = [".gnu.hash", ".dynsym", ".dynstr", ".note.stapsdt", ".probes", ".stapsdt.base"]
            subprocess.run(["objcopy"] + ["-j" + s for s in keep] + [lib, exe], check=True,
                           stderr=subprocess.DEVNULL)
            put("elf", open(exe, "rb").read())
        for m in mod:
            put("elf", open(m, "rb").read())


# Workloads, ASCII on the command line; the code objects they run are
# compiled as files of a service (/srv/app) with names in every str kind:
# ASCII, Latin-1, UCS-2, UCS-4.
OBJECTS = r'''
import _thread, time
SRC = """
import time
def attente_na\u00efve(n):
    if n:
        return attente_na\u00efve(n - 1)
    time.sleep(3600)
def pump():
    attente_na\u00efve(2)
    yield
class \u1e60ervice:
    def \U00020000(self, n):
        total = 0
        for i in range(n):
            if i % 3:
                total += i
        next(pump())
        return total
def main():
    \u1e60ervice().\U00020000(10)
"""
ns = {}
exec(compile(SRC, "/srv/app/s\u00e9rvice.py", "exec"), ns)
_thread.start_new_thread(ns["attente_na\u00efve"], (3,))
time.sleep(0.3)
print("ready", flush=True)
ns["main"]()
'''

TASKS = r'''
import asyncio
SRC = """
import asyncio
async def leaf(d):
    await asyncio.sleep(d)
class \u1e60ervice:
    async def poll(self):
        await leaf(3600)
async def branch():
    await asyncio.gather(leaf(3600), leaf(3600))
async def waits_on(fut):
    await fut
async def main():
    fut = asyncio.get_running_loop().create_future()
    ts = [asyncio.ensure_future(\u1e60ervice().poll()) for _ in range(3)]
    ts.append(asyncio.ensure_future(branch()))
    ts.append(asyncio.ensure_future(waits_on(fut)))
    ts[-1].set_name("br\u00e2nch")
    ts.append(asyncio.ensure_future(leaf(3600)))
    ts[-1].set_name("poller")
    await asyncio.sleep(0.3)
    print("ready", flush=True)
    await asyncio.sleep(3600)
"""
ns = {}
exec(compile(SRC, "/srv/app/tasks.py", "exec"), ns)
asyncio.run(ns["main"]())
'''


def interpreters():
    pyenv = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip()
    for v in ("3.8.18", "3.9.18", "3.10.13", "3.11.7", "3.12.1", "3.13.0"):
        exe = os.path.join(pyenv, "versions", v, "bin", "python" + v.rsplit(".", 1)[0])
        if os.access(exe, os.X_OK):
            yield "pyenv " + v, [exe]
    yield "debian 3.11", ["/usr/bin/python3.11"]
    for m in (13, 14, 15):
        if os.path.exists(os.path.join(CHROOT, "usr/bin/python3.%d" % m)):
            yield "sid 3.%d" % m, ["chroot", CHROOT, "/usr/bin/python3.%d" % m]


# the harnesses' memory image (image.h)
IMAGE_BASE = 0x7e0000000000
IMAGE_SIZE = 64 << 20
STRIDE = 1 << 20  # one cluster of the target's memory each
GAP = 64 << 10  # reads this close keep their distance: fields of one object


def pack(snap):
    """A snapshot (image.h) as the harness's input: the reads merged, in
    clusters of nearby ones, each cluster moved to its own stride of the
    image; every word that points into a cluster is moved with it."""
    assert snap[:8] == b"APSNAP1\0", "not a snapshot"
    pos = 8
    hlen, = struct.unpack_from("<I", snap, pos)
    hdr = bytearray(snap[pos + 4:pos + 4 + hlen])
    pos += 4 + hlen
    nrel, = struct.unpack_from("<I", snap, pos)
    rel = struct.unpack_from("<%dI" % nrel, snap, pos + 4)
    pos += 4 + 4 * nrel
    reads = []
    while pos < len(snap):
        addr, n = struct.unpack_from("<QI", snap, pos)
        reads.append((addr, snap[pos + 12:pos + 12 + n]))
        pos += 12 + n
    segs = []
    for addr, data in sorted(reads, key=lambda r: r[0]):
        if segs and addr <= segs[-1][0] + len(segs[-1][1]):
            start, buf = segs[-1]
            buf.extend(data[start + len(buf) - addr:])
        else:
            segs.append((addr, bytearray(data)))
    clusters = []  # [page, end, segments]
    for start, buf in segs:
        end = start + len(buf)
        if clusters and start - clusters[-1][1] <= GAP and end - clusters[-1][0] <= STRIDE - GAP:
            clusters[-1][1] = max(clusters[-1][1], end)
            clusters[-1][2].append((start, buf))
        else:
            assert end - (start & ~0xfff) <= STRIDE - GAP, "a read larger than a stride"
            clusters.append([start & ~0xfff, end, [(start, buf)]])
    assert len(clusters) <= IMAGE_SIZE // STRIDE, "too many clusters"

    def moved(v):
        # up to GAP past what was read: a pointer into the rest of an
        # object (a frame's instruction in the bytecode of its code object)
        for i, (page, end, _) in enumerate(clusters):
            if page <= v & ~7 < end + GAP:
                return v - page + IMAGE_BASE + i * STRIDE
        return v

    out = bytearray()
    for i, (page, end, ss) in enumerate(clusters):
        for start, buf in ss:
            for k in range((-start) % 8, len(buf) - 7, 8):
                struct.pack_into("<Q", buf, k, moved(struct.unpack_from("<Q", buf, k)[0]))
            for k in range(0, len(buf), 0xffff):
                chunk = buf[k:k + 0xffff]
                out += struct.pack("<IH", start + k - page + i * STRIDE, len(chunk)) + chunk
    for r in rel:
        struct.pack_into("<Q", hdr, r, moved(struct.unpack_from("<Q", hdr, r)[0]))
    return bytes(hdr) + bytes(out)


FOUND = re.compile(r"^(frame|code|walk|  at|open|tasks|  task|    coroutines)\b.*", re.M)


def snapshot(name, pid, args, label):
    """Snapshot what harness NAME reads of PID, as a seed; None if it
    could not, or if the seed does not read back the same."""
    harness = os.path.join(FUZZ, "fuzz_" + name)
    with tempfile.TemporaryDirectory() as d:
        snap, seed = os.path.join(d, "snap"), os.path.join(d, "seed")
        env = dict(os.environ, FUZZ_GEN="%d %s%s" % (pid, args, snap))
        r = subprocess.run([harness], env=env, capture_output=True, text=True)
        if r.returncode:
            print("%s %s: no snapshot: %s" % (name, label, r.stderr.strip()[-400:]), file=sys.stderr)
            return None
        data = pack(open(snap, "rb").read())
        with open(seed, "wb") as f:
            f.write(data)
        back = subprocess.run([harness, seed], env=dict(os.environ, FUZZ_VERBOSE="1"),
                              capture_output=True, text=True)
    def lines(text):
        return [m.group(0) for m in FOUND.finditer(text)]

    if back.returncode or lines(r.stderr) != lines(back.stderr):
        print("%s %s: the seed reads back otherwise:\n  live: %s\n  seed: %s" % (
            name, label, lines(r.stderr), lines(back.stderr)), file=sys.stderr)
        return None
    print("%s %s: %d bytes, %s" % (name, label, len(data), "; ".join(lines(r.stderr)[:4])))
    return data


def live(argv, code, fn):
    p = subprocess.Popen(argv + ["-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        if p.stdout.readline().strip() != "ready":
            print("%s: workload failed: %s" % (argv, p.stderr.read()[-400:]), file=sys.stderr)
            return
        time.sleep(0.2)
        fn(p.pid)
    finally:
        p.kill()
        p.wait()


def pyobjects():
    for label, argv in interpreters():
        def gen(pid):
            for thread in (0, 1):
                data = snapshot("pyobjects", pid, "%d " % thread, "%s thread %d" % (label, thread))
                if data:
                    put("pyobjects", data)
        live(argv, OBJECTS, gen)


def pytasks():
    for label, argv in interpreters():
        def gen(pid):
            data = snapshot("pytasks", pid, "", label)
            if data:
                put("pytasks", data)
        live(argv, TASKS, gen)


if __name__ == "__main__":
    names = ["linetable", "debug_offsets", "fdinfo", "record", "elf", "pyobjects", "pytasks"]
    which = sys.argv[1:] or names
    for name in which:
        if name not in names:
            sys.exit(__doc__)
        for f in glob.glob(os.path.join(OUT, name, "*")):
            os.unlink(f)
        globals()[name]()
    for d in sorted(os.listdir(OUT)):
        files = os.listdir(os.path.join(OUT, d))
        print("%-14s %3d seeds, %7d bytes" % (d, len(files), sum(
            os.path.getsize(os.path.join(OUT, d, f)) for f in files)))
