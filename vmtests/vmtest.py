#!/usr/bin/python3
"""Boot the Debian kernels users run under QEMU and run asyncprobe's BPF
tests inside each (vmtests/guest.py): `asyncprobe check`, a stall and a
blocking syscall of a real asyncio service, found with function and line.

Kernels come from Debian's archive with apt, into a cache (only the
kernel image and the 9p/virtio modules are kept, the .debs too):
  6.1   bookworm's linux-image-amd64
  6.12  trixie's linux-image-amd64 (as in bookworm-backports)
  sid   sid's newest (linux-binary-* + linux-modules-*)
A VM is QEMU with the kernel, a busybox initramfs carrying the modules
the kernel needs for 9p, the host's root shared read-only over 9p and a
read-write share for the results; its /init (vmtests/init) runs the tests
chrooted in the host's root and writes their exit code.  KVM is used
where it boots (probed once, with a short timeout), else TCG.

Usage: vmtest.py [--kernels 6.1,6.12,sid] [--bin ./asyncprobe]
                 [--cache DIR] [--out DIR] [--timeout SECONDS]
Prints a table per kernel: booted, features found, each test, time;
exits 1 when a kernel fails.
"""
import argparse
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = os.path.dirname(HERE)
CACHE = "/var/cache/asyncprobe/vm"
MIRROR = "http://deb.debian.org/debian"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
KERNELS = {"6.1": "bookworm", "6.12": "trixie", "sid": "sid"}
# what the initramfs loads to reach the shares (with their dependencies)
MODULES = ["virtio_pci", "9pnet_virtio", "9p"]
MODULE_DIRS = ["kernel/fs", "kernel/net", "kernel/drivers/virtio", "kernel/lib",
               "kernel/crypto"]


def log(*words):
    print("vmtest:", *words, file=sys.stderr, flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


class Suite:
    """apt pointed at one suite of the archive, with its own lists and
    nothing of the host's package state."""

    def __init__(self, cache, suite):
        self.dir = os.path.join(cache, "apt", suite)
        for d in ("lists/partial", "archives/partial"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        with open(os.path.join(self.dir, "sources.list"), "w") as f:
            f.write("deb [signed-by=%s] %s %s main\n" % (KEYRING, MIRROR, suite))
        self.conf = os.path.join(self.dir, "apt.conf")
        with open(self.conf, "w") as f:
            for k, v in [("Dir::Etc::SourceList", self.dir + "/sources.list"),
                         ("Dir::Etc::SourceParts", "/nonexistent"),
                         ("Dir::State::Lists", self.dir + "/lists"),
                         ("Dir::State::status", "/dev/null"),
                         ("Dir::Cache", self.dir),
                         ("Dir::Cache::Archives", self.dir + "/archives"),
                         ("Acquire::Check-Valid-Until", "false"),
                         ("Acquire::Languages", "none"),
                         ("APT::Sandbox::User", "root")]:
                f.write('%s "%s";\n' % (k, v))
        self.env = dict(os.environ, APT_CONFIG=self.conf)
        self.suite = suite

    def update(self):
        r = subprocess.run(["apt-get", "update", "-qq"], env=self.env,
                           capture_output=True, text=True)
        if r.returncode and not glob.glob(self.dir + "/lists/*Packages*"):
            raise RuntimeError("apt-get update for %s failed: %s" % (self.suite, r.stderr.strip()))

    def depends(self, pkg):
        r = run(["apt-cache", "depends", "--no-recommends", "--no-suggests", pkg],
                env=self.env, capture_output=True, text=True)
        return re.findall(r"^\s*\|?Depends: (\S+)$", r.stdout, re.M)

    def download(self, pkgs, into):
        """The .debs of @pkgs in @into: the cached ones, else fetched."""
        paths = []
        for pkg in pkgs:
            have = glob.glob(os.path.join(into, pkg + "_*.deb"))
            if not have:
                run(["apt-get", "download", "-qq", pkg], env=self.env, cwd=into)
                have = glob.glob(os.path.join(into, pkg + "_*.deb"))
            if not have:
                raise RuntimeError("apt-get download %s gave no .deb" % pkg)
            paths.append(have[0])
        return paths


def kernel_packages(suite):
    """The packages that hold the suite's current amd64 kernel: its
    linux-image-VERSION, or on sid its linux-binary and linux-modules."""
    image = [p for p in suite.depends("linux-image-amd64") if p.startswith("linux-image-")]
    if not image:
        raise RuntimeError("no linux-image-* behind %s's linux-image-amd64" % suite.suite)
    parts = [p for p in suite.depends(image[0])
             if p.startswith(("linux-binary-", "linux-modules-"))]
    return image[0][len("linux-image-"):], parts or image


def modules_needed(root, release):
    """Module files under @root (an unpacked modules tree) for MODULES,
    dependencies first; names absent there are built in."""
    found = {}
    for path in glob.glob(os.path.join(root, "**", "*.ko*"), recursive=True):
        name = os.path.basename(path).split(".ko")[0].replace("-", "_")
        found[name] = path
    order = []

    def add(name, depth=0):
        name = name.replace("-", "_")
        if name not in found or found[name] in order or depth > 16:
            return
        deps = subprocess.run(["modinfo", "-F", "depends", found[name]],
                              capture_output=True, text=True).stdout.strip()
        for dep in filter(None, deps.split(",")):
            add(dep, depth + 1)
        order.append(found[name])

    for m in MODULES:
        add(m)
    return order


def kernel_prepare(cache, key, refresh):
    """Kernel @key's image and initramfs in the cache: (release, vmlinuz,
    initrd), fetched and built when missing."""
    suite = Suite(cache, KERNELS[key])
    if refresh or not glob.glob(os.path.join(suite.dir, "lists", "*Packages*")):
        suite.update()
    release, pkgs = kernel_packages(suite)
    kdir = os.path.join(cache, "kernels", release)
    # the initramfs is rebuilt whenever /init changes: its hash names it
    with open(os.path.join(HERE, "init"), "rb") as f:
        tag = hashlib.sha256(f.read()).hexdigest()[:12]
    vmlinuz = os.path.join(kdir, "vmlinuz")
    initrd = os.path.join(kdir, "initrd-%s.gz" % tag)
    if os.path.exists(vmlinuz) and os.path.exists(initrd):
        return release, vmlinuz, initrd
    debdir = os.path.join(cache, "debs", key)
    os.makedirs(debdir, exist_ok=True)
    try:
        debs = suite.download(pkgs, debdir)
    except (RuntimeError, subprocess.CalledProcessError):
        if refresh:
            raise
        # the cached lists may name a kernel the archive no longer has
        return kernel_prepare(cache, key, True)
    # older kernels of this key: not needed any more
    for old in glob.glob(os.path.join(debdir, "*.deb")):
        if old not in debs:
            os.unlink(old)
    log("unpacking", release)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        for deb in debs:
            tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", deb], stdout=subprocess.PIPE)
            # each .deb holds some of these: tar's "not found" is no error
            subprocess.run(["tar", "-x", "-C", tmp, "--wildcards", "./boot/vmlinuz-*",
                            "*/vmlinuz",
                            *["*/modules/%s/%s/*" % (release, d) for d in MODULE_DIRS]],
                           stdin=tar.stdout, stderr=subprocess.DEVNULL)
            if tar.wait():
                raise RuntimeError("dpkg-deb cannot read %s" % deb)
        images = glob.glob(tmp + "/boot/vmlinuz-*") + glob.glob(tmp + "/usr/lib/modules/*/vmlinuz")
        if not images:
            raise RuntimeError("no vmlinuz in %s" % " ".join(debs))
        mods = modules_needed(tmp, release)
        build = os.path.join(tmp, "initramfs")
        os.makedirs(build + "/bin")
        os.makedirs(build + "/modules")
        for d in ("proc", "sys", "dev", "host"):
            os.makedirs(os.path.join(build, d))
        shutil.copy("/bin/busybox", build + "/bin/busybox")
        shutil.copy(os.path.join(HERE, "init"), build + "/init")
        os.chmod(build + "/init", 0o755)
        names = []
        for path in mods:
            name = os.path.basename(path)
            dest = os.path.join(build, "modules", name)
            # busybox's insmod takes plain modules
            if name.endswith(".xz"):
                run(["sh", "-c", 'xz -dc "$0" > "$1"', path, dest[:-3]])
                name = name[:-3]
            elif name.endswith(".zst"):
                run(["zstd", "-qdf", path, "-o", dest[:-4]])
                name = name[:-4]
            else:
                shutil.copy(path, dest)
            names.append(name)
        with open(build + "/modules/order", "w") as f:
            f.write("\n".join(names) + "\n")
        os.makedirs(kdir, exist_ok=True)
        for old in glob.glob(os.path.join(kdir, "initrd*.gz")):
            os.unlink(old)
        run(["sh", "-c", "cd \"$0\" && find . | cpio -o -H newc -R 0:0 --quiet | gzip -1 > \"$1\"",
             build, initrd + ".tmp"])
        shutil.copy(images[0], vmlinuz + ".tmp")
        os.rename(initrd + ".tmp", initrd)
        os.rename(vmlinuz + ".tmp", vmlinuz)
        log("%s: kernel and initramfs (modules: %s)" % (release, ", ".join(names) or "built in"))
    return release, vmlinuz, initrd


def boot(vmlinuz, initrd, results, accel, timeout, binary, mode="test"):
    """Run one VM; (exit code of the tests or None, seconds, console)."""
    for f in ("rc", "booted", "log", "result.json"):
        if os.path.exists(os.path.join(results, f)):
            os.unlink(os.path.join(results, f))
    append = ("console=ttyS0 panic=-1 quiet loglevel=3 apmode=%s apdir=%s apbin=%s" %
              (mode, PROJECT, binary))
    cmd = ["qemu-system-x86_64", "-nographic", "-no-reboot", "-m", "2048", "-smp", "2",
           "-kernel", vmlinuz, "-initrd", initrd, "-append", append,
           "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,"
                      "multidevs=remap",
           "-virtfs", "local,path=%s,mount_tag=results,security_model=none" % results,
           "-virtfs", "local,path=%s,mount_tag=project,security_model=none,readonly=on,"
                      "multidevs=remap" % PROJECT]
    # TCG on one host thread: multi-threaded TCG can run a stale copy of
    # code the kernel patches live (tracepoint and static-key sites: an
    # "Oops: int3" in __schedule when a BPF program attaches)
    cmd += ["-accel", "kvm", "-cpu", "host"] if accel == "kvm" else \
        ["-accel", "tcg,thread=single", "-cpu", "max"]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    try:
        console = p.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        p.kill()
        console = p.communicate()[0]
    secs = time.monotonic() - t0
    try:
        with open(os.path.join(results, "rc")) as f:
            rc = int(f.read().strip())
    except (OSError, ValueError):
        rc = None
    return rc, secs, console.decode(errors="replace")


def accel_probe(vmlinuz, initrd, results, binary):
    """KVM where it boots a kernel within a short time, else TCG."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
        os.close(fd)
    except OSError:
        return "tcg", "no usable /dev/kvm"
    rc, secs, _ = boot(vmlinuz, initrd, results, "kvm", 20, binary, mode="probe")
    if rc == 0:
        return "kvm", "KVM boots in %.1f s" % secs
    return "tcg", "/dev/kvm is there but a kernel did not boot with it in 20 s"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kernels", default=",".join(KERNELS))
    ap.add_argument("--bin", default=os.path.join(PROJECT, "asyncprobe"))
    ap.add_argument("--cache", default=CACHE)
    ap.add_argument("--out", default=os.path.join(PROJECT, ".output", "vmtest"))
    ap.add_argument("--timeout", type=int, default=600, help="per VM, seconds")
    ap.add_argument("--refresh", action="store_true",
                    help="ask the archive for newer kernels (apt-get update)")
    ap.add_argument("--accel", choices=["auto", "kvm", "tcg"], default="auto")
    args = ap.parse_args()
    binary = os.path.abspath(args.bin)
    if not os.access(binary, os.X_OK):
        print("vmtest: no asyncprobe binary at %s: run make first" % binary, file=sys.stderr)
        return 2
    out = os.path.abspath(args.out)
    # the VMs see the project, and the results share as /tmp/vm: a binary
    # from elsewhere goes there
    outside = not binary.startswith(PROJECT + "/")
    keys = [k.strip() for k in args.kernels.split(",") if k.strip()]
    for k in keys:
        if k not in KERNELS:
            print("vmtest: unknown kernel %r (known: %s)" % (k, ", ".join(KERNELS)),
                  file=sys.stderr)
            return 2
    for tool in ("qemu-system-x86_64", "busybox", "cpio", "dpkg-deb", "modinfo"):
        if not shutil.which(tool) and not os.path.exists("/bin/" + tool):
            print("vmtest: %s is missing: run make deps" % tool, file=sys.stderr)
            return 2
    os.makedirs(args.cache, exist_ok=True)

    rows, accel = [], None
    for key in keys:
        row = {"kernel": key, "release": "?", "booted": False, "features": [], "tests": [],
               "seconds": 0.0, "ok": False, "why": ""}
        rows.append(row)
        try:
            release, vmlinuz, initrd = kernel_prepare(args.cache, key, args.refresh)
        except (RuntimeError, subprocess.CalledProcessError, OSError) as e:
            row["why"] = "kernel not prepared: %s" % e
            log(key, row["why"])
            continue
        row["release"] = release
        results = os.path.join(out, release)
        os.makedirs(results, exist_ok=True)
        guest_bin = binary
        if outside:
            shutil.copy(binary, os.path.join(results, "asyncprobe"))
            guest_bin = "/tmp/vm/asyncprobe"
        if accel is None:
            accel, why = (args.accel, "as asked") if args.accel != "auto" else \
                accel_probe(vmlinuz, initrd, results, guest_bin)
            log("accelerator: %s (%s)" % (accel, why))
        log("booting", release)
        rc, secs, console = boot(vmlinuz, initrd, results, accel, args.timeout, guest_bin)
        row["seconds"] = secs
        with open(os.path.join(results, "console.log"), "w") as f:
            f.write(console)
        row["booted"] = os.path.exists(os.path.join(results, "booted"))
        try:
            with open(os.path.join(results, "result.json")) as f:
                res = json.load(f)
            row["features"], row["tests"] = res["features"], res["tests"]
            row["uses"] = res.get("uses", "")
        except (OSError, ValueError, KeyError):
            pass
        row["ok"] = rc == 0 and bool(row["tests"]) and all(t["ok"] for t in row["tests"])
        oops = re.search(r"(Kernel panic|Oops|BUG:|WARNING:).*", console)
        if not row["booted"]:
            row["why"] = "did not boot; console in %s/console.log" % results
        elif oops:
            row["ok"] = False
            row["why"] = "the kernel said %r; see %s/console.log" % (oops.group(0).strip(), results)
        elif rc is None:
            row["why"] = "no exit code (timeout %d s?); see %s/log" % (args.timeout, results)
        elif not row["ok"]:
            row["why"] = "tests failed; see %s/log" % results
        log("%s: %s in %.0f s" % (release, "passed" if row["ok"] else "FAILED", secs))

    print("\nkernel  release                      booted  time    features")
    for r in rows:
        feats = " ".join(f for f in r["features"] if f not in ("capabilities", "btf"))
        print("%-7s %-28s %-7s %5.0f s  %s" % (r["kernel"], r["release"],
                                              "yes" if r["booted"] else "no", r["seconds"],
                                              feats or "-"))
        if r.get("uses"):
            print("        uses: %s" % r["uses"])
        for t in r["tests"]:
            print("        %-4s %-16s %6.1f s  %s" % ("PASS" if t["ok"] else "FAIL", t["name"],
                                                   t["seconds"], t["detail"]))
        if r["why"]:
            print("        %s" % r["why"])
    passed = sum(r["ok"] for r in rows)
    print("%d passed, %d failed" % (passed, len(rows) - passed))
    return 0 if passed == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
