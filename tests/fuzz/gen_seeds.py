#!/usr/bin/python3
"""Write the fuzzers' seed corpora (tests/fuzz/corpus/NAME/) from real data.

- linetable, debug_offsets: the real interpreters' tables and
  _Py_DebugOffsets images already kept as unit-test fixtures;
- fdinfo: this machine's /proc/net lines;
- record: records of real runs (asyncprobe record on misbehave.py), whole
  and cut short;
- elf: small real ELF objects (a compiled probe binary, stripped or not);
- pyobjects: real code objects copied out of each interpreter 3.8-3.15
  (pyenv builds, Debian's python3.11, the sid chroot's 3.13-3.15) by the
  fuzz_pyobjects harness itself (FUZZ_GEN).

Run as root after `make fuzz-build`; commit what it writes.
Usage: gen_seeds.py [linetables|debug_offsets|fdinfo|records|elves|pyobjects]...
"""
import glob
import gzip
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(ROOT, "tests", "unit", "fixtures")
OUT = os.path.join(HERE, "corpus")
FUZZ = os.path.join(ROOT, ".output-fuzz")


def put(name, data):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, hashlib.sha1(data).hexdigest()[:16])
    with open(path, "wb") as f:
        f.write(data)


def c_arrays(path):
    text = open(path).read()
    return {m.group(1): bytes(int(x, 0) for x in re.findall(r"0x[0-9a-fA-F]+|\d+", m.group(2)))
            for m in re.finditer(r"static const uint8_t (\w+)\[\] = \{([^}]*)\}", text)}


def linetables():
    kinds = {"PY_LT_LNOTAB": 0, "PY_LT_310": 1, "PY_LT_LOCATIONS": 2}  # input byte % 3 + 1
    for path in sorted(glob.glob(os.path.join(FIXTURES, "linetable_3_*.h"))):
        arrays = c_arrays(path)
        for m in re.finditer(r'\{ "[^"]*", (PY_LT_\w+), (-?\d+), (\w+), \d+,', open(path).read()):
            put("linetable", bytes([kinds[m.group(1)]]) + int(m.group(2)).to_bytes(4, "little", signed=True)
                + arrays[m.group(3)])


def debug_offsets():
    for path in sorted(glob.glob(os.path.join(FIXTURES, "debug_offsets_3_*.h"))):
        for blob in c_arrays(path).values():
            put("debug_offsets", blob)


def fdinfo():
    for which, files in ((0, ["/proc/net/tcp", "/proc/net/udp"]), (1, ["/proc/net/tcp6", "/proc/net/udp6"]),
                         (2, ["/proc/net/unix"])):
        for path in files:
            try:
                lines = open(path).read().splitlines()[1:6]
            except OSError:
                continue
            for line in lines:
                put("fdinfo", bytes([which]) + line.encode())


def records():
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
            # the same events, uncompressed lines regzipped small
            lines = gzip.decompress(data).splitlines(keepends=True)
            put("record", gzip.compress(b"".join(lines[:6])))
            os.unlink(rec)
        finally:
            p.kill()
            p.wait()
            if os.path.exists(trigger):
                os.unlink(trigger)


def elves():
    src = "/tmp/fuzz-seed-elf.c"
    with open(src, "w") as f:
        f.write("int _PyRuntime[4] __attribute__((section(\".PyRuntime\")));\n"
                "int Py_Version = 0x030b02f0;\nint main(void) { return _PyRuntime[0]; }\n")
    for flags in (["-O0"], ["-O2", "-s"], ["-O1", "-shared", "-fPIC"]):
        exe = "/tmp/fuzz-seed-elf"
        subprocess.run(["cc", *flags, src, "-o", exe], check=True)
        put("elf", open(exe, "rb").read())
        os.unlink(exe)
    os.unlink(src)


def interpreters():
    pyenv = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip()
    for v in ("3.8.18", "3.9.18", "3.10.13", "3.11.7", "3.12.1", "3.13.0"):
        exe = os.path.join(pyenv, "versions", v, "bin", "python" + v.rsplit(".", 1)[0])
        if os.access(exe, os.X_OK):
            yield int(v.split(".")[1]), [exe]
    yield 11, ["/usr/bin/python3.11"]
    chroot = "/var/cache/asyncprobe/sid-chroot"
    for m in (13, 14, 15):
        if os.path.exists(os.path.join(chroot, "usr/bin/python3.%d" % m)):
            yield m, ["chroot", chroot, "/usr/bin/python3.%d" % m]


CODE = r'''
import sys, time
def example_function(a, b):
    total = 0
    for i in range(a):
        if i % 3:
            total += b * i
    return total
class Namespace:
    def méthode_ünïcode(self):
        return [x for x in range(3)]
print(hex(id(example_function.__code__)), hex(id(Namespace.méthode_ünïcode.__code__)), flush=True)
time.sleep(30)
'''


def pyobjects():
    harness = os.path.join(FUZZ, "fuzz_pyobjects")
    for minor, argv in interpreters():
        p = subprocess.Popen(argv + ["-c", CODE], stdout=subprocess.PIPE, text=True)
        try:
            codes = p.stdout.readline().split()
            for i, code in enumerate(codes):
                out = "/tmp/fuzz-seed-pyobj"
                env = dict(os.environ, FUZZ_GEN="%d %d %s %s" % (p.pid, minor, code, out))
                r = subprocess.run([harness], env=env, capture_output=True)
                if r.returncode:
                    print("no seed from 3.%d: %s" % (minor, r.stderr.decode()[-300:]), file=sys.stderr)
                    continue
                put("pyobjects", open(out, "rb").read())
                os.unlink(out)
        finally:
            p.kill()
            p.wait()


if __name__ == "__main__":
    which = sys.argv[1:] or ["linetables", "debug_offsets", "fdinfo", "records", "elves",
                             "pyobjects"]
    for name in which:
        shutil.rmtree(os.path.join(OUT, {"linetables": "linetable", "records": "record",
                                         "elves": "elf"}.get(name, name)), ignore_errors=True)
        globals()[name]()
    for d in sorted(os.listdir(OUT)):
        files = os.listdir(os.path.join(OUT, d))
        print("%-14s %3d seeds, %7d bytes" % (d, len(files), sum(
            os.path.getsize(os.path.join(OUT, d, f)) for f in files)))
