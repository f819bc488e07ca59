#!/usr/bin/env python3
"""What watching costs a real asyncio service, against the alternatives.

The target is an aiohttp service (service.py) on Debian's python3.11,
pinned to CPU 0 and loaded by wrk from CPU 1, in three variants: "hello",
"syscalls" (32 small reads and writes per request) and "tasks" (10,000
short tasks per second besides the requests).  Each configuration runs on
the same running service in turns (rotating their order), ROUNDS times,
each round on a fresh service:

  baseline        no profiler
  baseline-again  no profiler again: its ratio to the baseline is what the
                  measurement scatters by (an A/A test)
  asyncprobe      asyncprobe -p PID (defaults)
  asyncprobe-all  asyncprobe with the exporter on and scraped every second,
                  the lowest thresholds (-s 10 -b 1) and a sample every
                  1 ms of loop CPU
  asyncio-debug   the service started with PYTHONASYNCIODEBUG=1
  austin          Austin, a sampling profiler, at its default interval

Printed per variant: medians of requests/s and p99 latency, and of their
ratios to the baseline of the same round, the profiler's CPU (% of one core,
its own process), the CPU its BPF programs take in the threads they run in
(kernel.bpf_stats_enabled, during the warm-up only: the accounting has a
cost of its own), peak RSS, target syscalls/s (counted by perf in the
warm-up), asyncprobe's time from start to attached, from a stall's end to
its finding printed, and events lost.  Then the budget, line by line.

Usage: overhead.py [--rounds N] [--seconds S] [--pairs P] [--variants a,b]
                   [--configs a,b] [--markdown FILE] [--pool]
       overhead.py --twin PAIRS [--seconds S] [--variants a,b] [--pool] [--solo P]
                   [--tracing P]
       (--solo, --tracing: default 10 after --pairs, none after --twin; --tracing
       none where asyncprobe's selector hook is not a syscall tracepoint)

--twin measures only asyncprobe's cost to its target (throughput and p99
latency), but to a few tenths of a percent where the runs above scatter by
several percent (baseline-again shows by how much): two equal services
share CPU 0, so that whatever the machine does affects both (see twin()).
After the rounds, P twin pairs per variant (default 24) are what the
budget's throughput and p99 lines are judged on, less what the twin pays as
much as the target: above all the syscall tracing path, which every task
takes while a syscall tracepoint is on (asyncprobe's selector hook on a
kernel without fentry and kprobes, attached then only at times: the share
of the run asyncprobe's summary gives), measured (--tracing P) on one
service alone with an ftrace syscall event that nothing triggers enabled
and disabled in asyncprobe's place.
Then (--solo P, default 10) P pairs on one service alone, each watched
segment between unwatched ones: coarser, but it sees a cost that falls on
the target's CPU as a whole, which the twins share and so cannot see (armed
debug registers cost a service in a VM 5-7% that way).
Every twin pair is logged (.output/bench/twin-pairs.jsonl, with the build's
hash); --pool judges on the pairs of every run so far of this build
(asyncprobe and the service) and --seconds, with a confidence interval that
resamples runs as well as pairs, so that a difference between runs is
counted, not hidden.
Needs root, wrk and perf (make deps).
"""
import argparse
import hashlib
import json
import math
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PROBE = os.environ.get("ASYNCPROBE") or os.path.join(ROOT, "asyncprobe")
# every twin pair measured, one JSON line each, for --pool
PAIRS_LOG = os.path.join(ROOT, ".output", "bench", "twin-pairs.jsonl")
BUILD = None
SERVICE = os.path.join(ROOT, "tests", "bench", "service.py")
PY = os.environ.get("PY", "/usr/bin/python3.11")
VARIANTS = ("hello", "syscalls", "tasks")
CONFIGS = ("baseline", "baseline-again", "asyncprobe", "asyncprobe-all", "asyncio-debug", "austin")
TARGET_CPU, LOAD_CPU = "0", "1"
CONNECTIONS = 32
STALL_MS = 200  # the stall whose report is timed

# the budget (issue: overhead benchmark); ratios are against the baseline
BUDGET_THROUGHPUT = 0.99
BUDGET_P99 = 1.03
BUDGET_CPU_PCT = 2.0
BUDGET_RSS_MIB = 32
BUDGET_SYSCALLS = 20_000
BUDGET_ATTACH_S = 0.3
BUDGET_REPORT_S = 1.0


class Proc:
    """A child whose output lines are read as they come, each with the
    CLOCK_MONOTONIC time it was read at."""

    def __init__(self, argv, env=None):
        self.t0 = time.monotonic()
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  stdin=subprocess.DEVNULL, text=True, env=env)
        self.out, self.err = [], []
        self.cond = threading.Condition()
        for stream, lines in ((self.p.stdout, self.out), (self.p.stderr, self.err)):
            threading.Thread(target=self._read, args=(stream, lines), daemon=True).start()

    def _read(self, stream, lines):
        for line in stream:
            with self.cond:
                lines.append((time.monotonic(), line))
                self.cond.notify_all()
        with self.cond:
            lines.append((time.monotonic(), None))
            self.cond.notify_all()

    def wait_line(self, lines, pred, timeout):
        """The first (time, line) of @lines matching @pred, or None."""
        end = time.monotonic() + timeout
        i = 0
        with self.cond:
            while True:
                while i < len(lines):
                    t, line = lines[i]
                    if line is None:
                        return None
                    if pred(line):
                        return t, line
                    i += 1
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def stop(self, sig=signal.SIGINT, timeout=10):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        # let the readers see the end of the output
        self.wait_line(self.out, lambda l: False, 2)
        self.wait_line(self.err, lambda l: False, 2)

    def stderr_text(self):
        return "".join(l for _, l in self.err if l)


def schedstat(pid, field):
    """Field @field of /proc/PID/task/*/schedstat summed over @pid's
    threads: 0 CPU time (ns), 2 times put on a CPU."""
    total = 0
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[field])
    except (OSError, ValueError, IndexError):
        pass
    return total


def cpu_ns(pid):
    """CPU time of every thread of @pid so far, in ns."""
    return schedstat(pid, 0)


def bpf_progs(pid):
    """{prog_id: (run_time_ns, run_cnt)} of the BPF programs @pid holds
    (counted while kernel.bpf_stats_enabled is 1)."""
    progs = {}
    try:
        for fd in os.listdir("/proc/%d/fdinfo" % pid):
            try:
                with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                    kv = dict(l.split(":", 1) for l in f if ":" in l)
            except OSError:
                continue
            if "prog_id" in kv and "run_time_ns" in kv:
                progs[int(kv["prog_id"])] = (int(kv["run_time_ns"]), int(kv.get("run_cnt", 0)))
    except (OSError, ValueError):
        pass
    return progs


def bpf_ns(pid):
    """Run time so far of the BPF programs @pid holds, in ns."""
    return sum(t for t, _ in bpf_progs(pid).values())


def switch_prog_ids(pid):
    """Ids of @pid's programs on the sched_switch tracepoint (bpftool)."""
    ids = set(bpf_progs(pid))
    r = subprocess.run(["bpftool", "-j", "link", "show"], capture_output=True, text=True)
    try:
        links = json.loads(r.stdout or "[]")
    except ValueError:
        return set()
    return {l["prog_id"] for l in links
            if l.get("prog_id") in ids and "sched_switch" in (l.get("tp_name") or "")}


def timeslices(pid):
    """How many times the threads of @pid have been put on a CPU so far."""
    return schedstat(pid, 2)


class BpfStats:
    """kernel.bpf_stats_enabled on for a while, then as it was."""
    PATH = "/proc/sys/kernel/bpf_stats_enabled"

    def __enter__(self):
        with open(self.PATH) as f:
            self.was = f.read().strip()
        with open(self.PATH, "w") as f:
            f.write("1")
        return self

    def __exit__(self, *exc):
        with open(self.PATH, "w") as f:
            f.write(self.was)


def peak_rss_mib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_tracefs():
    """perf counts syscall tracepoints through tracefs."""
    if os.path.exists("/sys/kernel/tracing/events"):
        return
    subprocess.run(["mount", "-t", "tracefs", "nodev", "/sys/kernel/tracing"],
                   check=False, stderr=subprocess.DEVNULL)


class WrkErrors(RuntimeError):
    """wrk saw failed requests: the service could not keep up."""


def wrk(port, seconds, latency=True, path="/"):
    """Requests/s and p99 latency (s) of a wrk run from LOAD_CPU."""
    argv = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", "-c%d" % CONNECTIONS,
            "-d%ds" % max(1, round(seconds)), "--timeout", "5s"]
    if latency:
        argv.append("--latency")
    r = subprocess.run(argv + ["http://127.0.0.1:%d%s" % (port, path)],
                       capture_output=True, text=True, timeout=seconds + 30)
    if r.returncode != 0:
        raise RuntimeError("wrk failed: " + r.stderr.strip())
    m = re.search(r"Requests/sec:\s+([\d.]+)", r.stdout)
    if not m:
        raise RuntimeError("no Requests/sec in wrk's output:\n" + r.stdout)
    rps = float(m.group(1))
    p99 = None
    m = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", r.stdout, re.M)
    if m:
        p99 = float(m.group(1)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0}[m.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", r.stdout)
    if errors:
        raise WrkErrors(errors.group(0))
    return rps, p99


def warm_up(port, seconds):
    """Load without measuring; a service that cannot keep up shows in the
    measured run."""
    try:
        wrk(port, seconds, False)
    except WrkErrors:
        pass


def count_syscalls(pid, seconds):
    """Syscalls/s of @pid over @seconds (perf, on the syscall tracepoint)."""
    r = subprocess.run(["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "-p", str(pid),
                        "--", "sleep", str(seconds)], capture_output=True, text=True)
    for line in r.stderr.splitlines():
        f = line.split(",")
        if len(f) > 2 and f[2] == "raw_syscalls:sys_enter" and f[0].isdigit():
            return int(f[0]) / seconds
    return None


class Service:
    """The target: service.py in @variant, pinned to TARGET_CPU."""

    def __init__(self, variant, debug=False):
        env = dict(os.environ)
        env.pop("PYTHONASYNCIODEBUG", None)
        if debug:
            env["PYTHONASYNCIODEBUG"] = "1"
        self.proc = Proc(["taskset", "-c", TARGET_CPU, PY, SERVICE, "0", variant], env=env)
        got = self.proc.wait_line(self.proc.out, lambda l: l.startswith("ready"), 15)
        if not got:
            self.stop()
            raise RuntimeError("service did not start: " + self.proc.stderr_text())
        self.port = int(got[1].split()[1])
        self.pid = self.proc.p.pid

    def stop(self):
        self.proc.stop(signal.SIGKILL)


def attached(argv):
    """asyncprobe started with @argv, once it says it is watching: (the
    process, seconds from its start to that line)."""
    prof = Proc(argv)
    got = prof.wait_line(prof.err, lambda l: "watching PID" in l, 10)
    if not got:
        prof.stop()
        raise RuntimeError("asyncprobe did not attach: " + prof.stderr_text())
    return prof, got[0] - prof.t0


class Run:
    """One configuration measured on a running service: its figures."""

    def __init__(self, variant, config, seconds, austin):
        self.variant, self.config = variant, config
        self.rps = self.p99 = self.cpu_pct = self.rss = self.syscalls = None
        self.bpf_pct = self.switches = self.switch_ns = None
        self.attach_s = self.report_s = self.lost = self.hook_share = None
        self.errors = None  # wrk's failed requests: this run not counted
        self.seconds, self.austin = seconds, austin

    def go(self, svc):
        prof = scraper = None
        try:
            prof, scraper = self.profiler(svc.pid)
            # warm-up, and the target's syscall rate under load
            load = threading.Thread(target=warm_up, args=(svc.port, 3))
            load.start()
            time.sleep(0.5)
            self.syscalls = count_syscalls(svc.pid, 1)
            if prof and self.config.startswith("asyncprobe"):
                sw = switch_prog_ids(prof.p.pid)
                with BpfStats():
                    b0, s0, t = bpf_progs(prof.p.pid), timeslices(svc.pid), time.monotonic()
                    time.sleep(0.4)
                    b1, s1, dt = bpf_progs(prof.p.pid), timeslices(svc.pid), time.monotonic() - t
                self.bpf_pct = sum(b1[i][0] - b0.get(i, (0, 0))[0] for i in b1) / dt / 1e7
                # the target's switches, in and out, each a run of the program
                self.switches = 2 * (s1 - s0) / dt
                runs = sum(b1[i][1] - b0.get(i, (0, 0))[1] for i in sw if i in b1)
                if runs:
                    self.switch_ns = sum(b1[i][0] - b0.get(i, (0, 0))[0]
                                         for i in sw if i in b1) / runs
            load.join()
            c0 = cpu_ns(prof.p.pid) if prof else 0
            t0 = time.monotonic()
            try:
                self.rps, self.p99 = wrk(svc.port, self.seconds)
            except WrkErrors as e:
                self.errors = str(e)
                return self
            if prof:
                self.cpu_pct = (cpu_ns(prof.p.pid) - c0) / (time.monotonic() - t0) / 1e7
                self.rss = peak_rss_mib(prof.p.pid)
            if prof and self.config.startswith("asyncprobe"):
                self.time_report(prof, svc.port)
        finally:
            if scraper:
                scraper.stop = True
            if prof:
                prof.stop()
        if prof and self.config.startswith("asyncprobe"):
            for _, line in prof.out:
                if line and '"event":"summary"' in line:
                    summary = json.loads(line)
                    self.lost = summary.get("events_lost")
                    # the share of the run its selector hook was attached
                    self.hook_share = summary.get("selector_hook_share", 1.0)
            if self.lost is None:
                raise RuntimeError("asyncprobe printed no summary: " + prof.stderr_text())
        return self

    def profiler(self, pid):
        if self.config in ("baseline", "baseline-again", "asyncio-debug"):
            return None, None
        if self.config == "austin":
            out = os.path.join(ROOT, ".output", "bench", "austin.out")
            prof = Proc([self.austin, "-p", str(pid), "-o", out])
            time.sleep(0.5)
            if prof.p.poll() is not None:
                raise RuntimeError("austin failed: " + prof.stderr_text())
            return prof, None
        argv = [PROBE, "-p", str(pid), "-f", "json"]
        scraper = None
        if self.config == "asyncprobe-all":
            mport = free_port()
            argv += ["-l", "127.0.0.1:%d" % mport, "-s", "10", "-b", "1",
                     "--sample-period", "1"]
            scraper = Scraper(mport)
        prof, self.attach_s = attached(argv)
        if scraper:
            scraper.start()
        return prof, scraper

    def time_report(self, prof, port):
        """Stall the loop once; how long after its end the finding came."""
        urllib.request.urlopen("http://127.0.0.1:%d/stall?ms=%d" % (port, STALL_MS),
                               timeout=10).read()

        def is_it(line):
            if '"event":"stall"' not in line:
                return False
            e = json.loads(line)
            return e["duration_ms"] >= STALL_MS * 0.9
        got = prof.wait_line(prof.out, is_it, 5)
        if got:
            self.report_s = got[0] - json.loads(got[1])["ts"]


def twin(variant, pairs, seconds):
    """The target-side cost of asyncprobe (defaults), precisely: two equal
    services share TARGET_CPU, each loaded by its own wrk, so that what
    the machine does to both (frequency, neighbours) cancels out in the
    ratio of their throughputs.  Segments alternate between neither
    watched and one watched — the first and the second service in turn, so
    that a difference between the two processes cancels too — starting and
    ending unwatched; the cost is the change in the watched one's ratio to
    its twin, against the mean of the unwatched segments either side (so
    that a drift between the two services cancels as well).  What asyncprobe
    costs the whole machine (its tracepoints fire for the twin too) is not
    in this figure: see tracing_path() and syscall_added_ns()."""
    a, b = Service(variant), Service(variant)
    out = []

    def segment():
        """{service: (requests/s, p99 latency)}"""
        res = {}
        ts = [threading.Thread(target=lambda s=s: res.__setitem__(s, wrk_half(s.port, seconds)))
              for s in (a, b)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return res

    def ratio(res, x, y, i):
        return res[x][i] / res[y][i]

    try:
        segment()  # warm-up
        before = segment()
        for k in range(pairs):
            x, y = (a, b) if k % 2 == 0 else (b, a)
            prof, _ = attached([PROBE, "-p", str(x.pid)])
            on = segment()
            prof.stop()
            after = segment()
            out.append(tuple(ratio(on, x, y, i) / math.sqrt(ratio(before, x, y, i) *
                                                           ratio(after, x, y, i))
                             for i in (0, 1)))
            before = after
    finally:
        a.stop()
        b.stop()
    return out


def bracketed(variant, pairs, seconds, on, off):
    """One service alone on TARGET_CPU, each segment with @on() done (undone
    by @off(its result)) between segments without, of the same process:
    the ratio of its throughput to the geometric mean of theirs, one per
    pair.  Coarser than the twin (segments scatter by ~4%), but it sees
    what falls on the target's CPU as a whole."""
    svc = Service(variant)
    out = []
    try:
        wrk(svc.port, 2, False)  # warm-up
        before = wrk(svc.port, seconds)[0]
        for _ in range(pairs):
            handle = on(svc)
            try:
                during = wrk(svc.port, seconds)[0]
            finally:
                off(handle)
            after = wrk(svc.port, seconds)[0]
            out.append(during / math.sqrt(before * after))
            before = after
    finally:
        svc.stop()
    return out


def solo(variant, pairs, seconds):
    """The twin cannot see a cost that falls on the target's CPU as a whole
    (both twins pay it): armed debug registers did that, 5-7% in a VM, and
    so does the syscall tracing path (tracing_path()).  So also asyncprobe
    watching one service alone, bracketed."""
    return bracketed(variant, pairs, seconds,
                     lambda svc: attached([PROBE, "-p", str(svc.pid)])[0],
                     lambda prof: prof.stop())


# an ftrace event on a syscall the services never make
TRACING_EVENT = "/sys/kernel/tracing/events/syscalls/sys_enter_getppid/enable"


def tracing_hooked():
    """Whether asyncprobe's selector hook is a syscall tracepoint here (a
    kernel without fentry and kprobes): while one is on, every syscall of
    every task takes the kernel's syscall tracing path."""
    r = subprocess.run([PROBE, "check"], capture_output=True, text=True)
    m = re.search(r"it uses ([^\n]*)", r.stdout + r.stderr)
    return bool(m) and ("syscall tracepoints" in m.group(1) or "sys_enter" in m.group(1))


def tracing_path(variant, pairs, seconds):
    """What the syscall tracing path by itself costs the service: bracketed
    pairs with an ftrace syscall event that nothing triggers enabled
    instead of asyncprobe (it turns the path on for every task as
    asyncprobe's tracepoints do).  Both twins pay it, so the twin cannot
    see it, and a tight getppid loop underrates it (syscall_added_ns(): 8 ns
    a syscall here, where the syscalls service pays ~40 ns)."""
    def toggle(value):
        with open(TRACING_EVENT, "w") as f:
            f.write(value)
    return bracketed(variant, pairs, seconds, lambda svc: toggle("1"),
                     lambda _: toggle("0"))


def syscall_added_ns(rounds=3):
    """What asyncprobe adds to a syscall of any process on the machine (its
    tracepoints turn on the syscall tracing path for every task), in ns:
    getppid timed on LOAD_CPU with and without asyncprobe watching an idle
    service, alternately; the median of the differences."""
    exe = os.path.join(ROOT, ".output", "bench", "syscost")
    subprocess.run(["cc", "-O2", "-o", exe, os.path.join(ROOT, "tests", "bench", "syscost.c")],
                   check=True)

    def ns():
        r = subprocess.run(["taskset", "-c", LOAD_CPU, exe, "getppid"], capture_output=True,
                           text=True, check=True)
        return float(r.stdout.split()[0])

    idle = Proc([PY, "-c", "import asyncio; asyncio.run(asyncio.sleep(3600))"])
    diffs = []
    try:
        time.sleep(0.3)
        for _ in range(rounds):
            off = ns()
            prof, _ = attached([PROBE, "-p", str(idle.p.pid)])
            on = ns()
            prof.stop()
            diffs.append(on - off)
    finally:
        idle.stop(signal.SIGKILL)
    return statistics.median(diffs)


def wrk_half(port, seconds):
    """Requests/s and p99 latency (s) with half the connections."""
    argv = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", "-c%d" % (CONNECTIONS // 2),
            "-d%ds" % max(1, round(seconds)), "--latency", "http://127.0.0.1:%d/" % port]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30)
    m = re.search(r"Requests/sec:\s+([\d.]+)", r.stdout)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", r.stdout, re.M)
    if r.returncode or not m or not p99:
        raise RuntimeError("wrk failed: " + r.stderr.strip())
    return float(m.group(1)), float(p99.group(1)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0}[p99.group(2)]


class Scraper(threading.Thread):
    """Prometheus' part: GET /metrics every second."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.url = "http://127.0.0.1:%d/metrics" % port
        self.stop = False

    def run(self):
        while not self.stop:
            try:
                urllib.request.urlopen(self.url, timeout=5).read()
            except OSError:
                pass
            time.sleep(1)


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def quartiles(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    q = statistics.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
    return q[0], q[2]


def spread_of(xs):
    """(median, q1, q3) of @xs"""
    q = quartiles(xs)
    return statistics.median(xs), q[0], q[1]


def median_ci(xs, level=0.95, resamples=2000):
    """A bootstrap confidence interval of the median of @xs: how far the
    median of this many pairs can be from the true one."""
    rng = random.Random(1)
    meds = sorted(statistics.median(rng.choices(xs, k=len(xs))) for _ in range(resamples))
    cut = int(resamples * (1 - level) / 2)
    return meds[cut], meds[-1 - cut]


def build_id():
    """The asyncprobe binary measured and the service it watched (and its
    TASK_TICK): pairs are pooled only within one."""
    h = hashlib.sha256()
    for path in (PROBE, SERVICE):
        with open(path, "rb") as f:
            h.update(f.read())
    h.update(os.environ.get("TASK_TICK", "").encode())
    return h.hexdigest()[:12]


def pairs_log(run, variant, seconds, pairs):
    """Append this run's twin pairs of @variant to PAIRS_LOG."""
    os.makedirs(os.path.dirname(PAIRS_LOG), exist_ok=True)
    with open(PAIRS_LOG, "a") as f:
        for t, q in pairs:
            f.write(json.dumps({"run": run, "build": BUILD, "variant": variant,
                                "seconds": seconds, "throughput": t, "p99": q}) + "\n")


def pairs_logged(variant, seconds):
    """{run: [(throughput, p99)]}: the logged twin pairs of this build,
    @variant and segment length, lines that do not parse left out."""
    runs = {}
    try:
        with open(PAIRS_LOG) as f:
            for line in f:
                try:
                    r = json.loads(line)
                    if (r["build"], r["variant"], r["seconds"]) == (BUILD, variant, seconds):
                        runs.setdefault(r["run"], []).append(
                            (float(r["throughput"]), float(r["p99"])))
                except (ValueError, KeyError, TypeError):
                    continue
    except FileNotFoundError:
        pass
    return runs


def runs_ci(runs, level=0.95, resamples=2000):
    """A bootstrap confidence interval of the median of all the pairs of
    @runs (lists of ratios), resampling the runs and then the pairs within
    each: a run-to-run difference that pairs within a run do not see
    widens it, as it should."""
    rng = random.Random(1)
    runs = [r for r in runs if r]
    meds = []
    for _ in range(resamples):
        xs = []
        for r in rng.choices(runs, k=len(runs)):
            xs.extend(rng.choices(r, k=len(r)))
        meds.append(statistics.median(xs))
    meds.sort()
    cut = int(resamples * (1 - level) / 2)
    return meds[cut], meds[-1 - cut]


def judged(variant, seconds, pairs, pool):
    """((median, q1, q3, ci) of throughput, the same of p99, pairs, runs):
    of this run's pairs, or with @pool of every logged run of this build
    with @seconds segments (this one included)."""
    runs = list(pairs_logged(variant, seconds).values()) if pool else [pairs]
    out = []
    for i in (0, 1):
        xs = [x[i] for r in runs for x in r]
        ci = runs_ci([[x[i] for x in r] for r in runs]) if len(runs) > 1 else median_ci(xs)
        out.append(spread_of(xs) + (ci,))
    return out[0], out[1], sum(len(r) for r in runs), len(runs)


def print_pooled(variant, seconds):
    """The pooled twin figures of @variant: every logged run of this build
    with @seconds segments."""
    runs = pairs_logged(variant, seconds)
    thr, p99, n, k = judged(variant, seconds, None, True)
    for what, x, i in (("throughput", thr, 0), ("p99", p99, 1)):
        print("  %-8s %-10s pooled %.3f  (%d pairs in %d run%s, run medians %s; 95%% CI "
              "over runs and pairs %.3f..%.3f)" % (
                  variant, what, x[0], n, k, "" if k == 1 else "s",
                  " / ".join("%.3f" % statistics.median(p[i] for p in r)
                             for r in runs.values()), x[3][0], x[3][1]), flush=True)


def settled(lo, hi, bound):
    """ "" when the interval [lo, hi] is on one side of @bound, else a note"""
    return "" if hi < bound or lo > bound else "; not settled: the interval spans the budget"


def scatter(spread, v, i):
    """ "  [q1..q3; A/A q1..q3]" for variant @v's asyncprobe ratio @i."""
    out = ""
    for c, label in (("asyncprobe", ""), ("baseline-again", "A/A ")):
        q = spread.get((v, c), (None, None))[i]
        if q:
            out += "%s%s%.3f..%.3f" % ("; " if out else "", label, q[0], q[1])
    return "  [%s]" % out if out else ""


def fmt(x, spec, none="-"):
    return none if x is None else format(x, spec)


def report(runs, variants, configs, rounds, seconds, out, precise=None, syscall_ns=0.0,
           alone=None, tracing=None):
    """The tables and the budget.  @precise: variant -> the twin
    measurement's (median, q1, q3) of throughput and of p99 ratios; where
    given, the budget's throughput and p99 lines are judged on it (the
    sequential runs scatter by more than the budget: see baseline-again)
    and the sequential figures follow the budget."""
    precise = precise or {}
    notes, wide_parts = [], []
    lines = []
    p = lines.append
    p("asyncprobe overhead: aiohttp service on %s pinned to CPU %s, wrk -c%d from CPU %s,"
      % (PY, TARGET_CPU, CONNECTIONS, LOAD_CPU))
    p("%g s per run, medians of %d rounds; ratios: the median of each round's ratio to the"
      % (seconds, rounds))
    p("baseline of that round (the same service process, but for asyncio-debug)")
    budget = []
    spread = {}
    failed = []
    for v in variants:
        base = [r for r in runs if r.variant == v and r.config == "baseline"]
        p("")
        p("variant %-8s (target %s syscalls/s)" % (
            v, fmt(med(r.syscalls for r in base), ",.0f")))
        p("| %-14s | %9s | %6s | %8s | %6s | %8s | %6s | %8s | %9s | %9s | %4s |" % (
            "configuration", "req/s", "ratio", "p99 ms", "ratio", "CPU %", "BPF %",
            "RSS MiB", "attach s", "report s", "lost"))
        p("|%s|" % "|".join("-" * (w + 2) for w in (14, 9, 6, 8, 6, 8, 6, 8, 9, 9, 4)))
        for c in configs:
            rs = [r for r in runs if r.variant == v and r.config == c]
            if not rs:
                continue
            bad = [r for r in rs if r.errors]
            if bad:
                failed.append("%s %s: %d of %d runs not counted, wrk saw failed requests (%s):"
                              " the service did not keep up" % (
                                  v, c, len(bad), len(rs), bad[0].errors))
            rps, p99 = med(r.rps for r in rs), med(r.p99 for r in rs)
            cpu, rss = med(r.cpu_pct for r in rs), max((r.rss for r in rs if r.rss), default=None)
            bpf = med(r.bpf_pct for r in rs)
            attach, rep = med(r.attach_s for r in rs), max(
                (r.report_s for r in rs if r.report_s is not None), default=None)
            lost = sum(r.lost for r in rs if r.lost is not None) \
                if any(r.lost is not None for r in rs) else None
            # ratios are paired: each run against the baseline of its round
            trs = [r.rps / b.rps for r in rs for b in base
                   if b.round == r.round and r.rps and b.rps]
            prs = [r.p99 / b.p99 for r in rs for b in base
                   if b.round == r.round and r.p99 and b.p99]
            tr, pr = med(trs), med(prs)
            spread[v, c] = quartiles(trs), quartiles(prs)
            p("| %-14s | %9s | %6s | %8s | %6s | %8s | %6s | %8s | %9s | %9s | %4s |" % (
                c, fmt(rps, ",.0f"), fmt(tr, ".3f"), fmt(p99 and p99 * 1e3, ".2f"),
                fmt(pr, ".3f"), fmt(cpu, ".2f"), fmt(bpf, ".2f"), fmt(rss, ".1f"),
                fmt(attach, ".3f"), fmt(rep, ".3f"), fmt(lost, "d")))
            if c == "asyncprobe":
                sys_rate = med(r.syscalls for r in rs)
                both = cpu + bpf if cpu is not None and bpf is not None else None
                if v in precise:
                    # the twin's figure, less what its twin pays as much
                    # as it does and so cancels out of it: the syscall
                    # tracing path every task takes while asyncprobe
                    # watches anyone (measured on the service by itself
                    # when the hook is a syscall tracepoint; else the
                    # tight loop's ns a syscall, with the syscall
                    # programs' early exit), and the sched_switch
                    # program's runs for the target's switches (their
                    # mean, the target's costlier runs included)
                    t_thr, t_p99, _, _ = precise[v]
                    sw_rate = med(r.switches for r in rs) or 0
                    sw_ns = med(r.switch_ns for r in rs) or 0
                    tr_path = (tracing or {}).get(v)
                    if tr_path:
                        # a cost, never a gain: a ratio above 1 is scatter;
                        # paid while the selector hook is attached (a
                        # share of the run where it is a syscall
                        # tracepoint: asyncprobe's summary says which)
                        share = med(r.hook_share for r in rs
                                    if r.hook_share is not None)
                        share = 1.0 if share is None else share
                        path, path_lo, path_hi = (
                            1 - share * (1 - min(x, 1.0))
                            for x in (statistics.median(tr_path), *median_ci(tr_path)))
                    else:
                        path = path_lo = path_hi = 1 - syscall_ns * (sys_rate or 0) / 1e9
                    sw_part = sw_ns * sw_rate / 1e9
                    wide = 1 - path + sw_part
                    wide_parts.append((v, sys_rate or 0, sw_rate, sw_ns, tr_path,
                                       share if tr_path else 1.0))
                    thr = t_thr[0] * path * (1 - sw_part)
                    lo = t_thr[3][0] * path_lo * (1 - sw_part)
                    hi = t_thr[3][1] * path_hi * (1 - sw_part)
                    plo, phi = t_p99[3]
                    # alone: a cost the twin cannot see fails the line
                    # when its 99% interval (of 5 pairs or more) is wholly
                    # below the budget
                    guard, seen = "", False
                    if (alone or {}).get(v):
                        slo, shi = median_ci(alone[v], level=0.99)
                        seen = len(alone[v]) >= 5 and shi < BUDGET_THROUGHPUT
                        guard = "; alone %.3f [%.3f..%.3f]%s" % (
                            statistics.median(alone[v]), slo, shi,
                            ": a cost the twin cannot see" if seen else "")
                    budget += [
                        ("%s: throughput >= %.2f x baseline" % (v, BUDGET_THROUGHPUT),
                         thr, thr >= BUDGET_THROUGHPUT and not seen,
                         "%%.3f  (twin %.3f [%.3f..%.3f] less %.2f%%%% machine-wide;"
                         " 95%%%% CI %.3f..%.3f%s%s)" % (
                             t_thr[0], t_thr[1], t_thr[2], wide * 100, lo, hi,
                             settled(lo, hi, BUDGET_THROUGHPUT), guard)),
                        ("%s: p99 <= %.2f x baseline" % (v, BUDGET_P99),
                         t_p99[0], t_p99[0] <= BUDGET_P99,
                         "%%.3f  (twin [%.3f..%.3f]; 95%%%% CI %.3f..%.3f%s)" % (
                             t_p99[1], t_p99[2], plo, phi, settled(plo, phi, BUDGET_P99))),
                    ]
                    notes.append("  %s: throughput %s%s" % (v, fmt(tr, ".3f"), scatter(spread, v, 0)))
                    notes.append("  %s: p99        %s%s" % (v, fmt(pr, ".3f"), scatter(spread, v, 1)))
                else:
                    budget += [
                        ("%s: throughput >= %.2f x baseline" % (v, BUDGET_THROUGHPUT),
                         tr, tr is not None and tr >= BUDGET_THROUGHPUT,
                         "%.3f" + scatter(spread, v, 0)),
                        ("%s: p99 <= %.2f x baseline" % (v, BUDGET_P99),
                         pr, pr is not None and pr <= BUDGET_P99, "%.3f" + scatter(spread, v, 1)),
                    ]
                budget += [
                    ("%s: collector + BPF <= %g%% of a core (at %s syscalls/s)" % (
                        v, BUDGET_CPU_PCT, fmt(sys_rate, ",.0f")),
                     both, both is not None and both <= BUDGET_CPU_PCT
                     and (sys_rate or 0) >= BUDGET_SYSCALLS, "%.2f"),
                    ("%s: collector <= %d MiB RSS" % (v, BUDGET_RSS_MIB),
                     rss, rss is not None and rss <= BUDGET_RSS_MIB, "%.1f"),
                    ("%s: attached <= %g s after start" % (v, BUDGET_ATTACH_S),
                     max((r.attach_s for r in rs if r.attach_s), default=None),
                     all(r.attach_s is not None and r.attach_s <= BUDGET_ATTACH_S for r in rs),
                     "%.3f"),
                    ("%s: finding printed <= %g s after the stall" % (v, BUDGET_REPORT_S),
                     rep, rep is not None and all(r.report_s is not None for r in rs)
                     and rep <= BUDGET_REPORT_S, "%.3f"),
                    ("%s: no events lost" % v, lost, lost == 0, "%d"),
                ]
    if failed:
        p("")
        p("\n".join(failed))
    if budget:
        p("")
        p("budget (asyncprobe with defaults; worst of the rounds for attach and report;")
        p("[the paired ratios' quartiles])")
        for what, val, ok, spec in budget:
            p("  %-4s %-58s %s" % ("ok" if ok else "MISS", what,
                                   "-" if val is None else spec % val))
        held = sum(1 for b in budget if b[2])
        p("%d of %d budget lines hold" % (held, len(budget)))
        if notes:
            p("")
            p("Throughput and p99 are judged on twin services (%s pairs%s, see --twin), less"
              % (", ".join("%s %d" % (v, x[2]) for v, x in precise.items()),
                 "" if all(x[3] == 1 for x in precise.values()) else " in %s runs pooled" %
                 "/".join(str(x[3]) for x in precise.values())))
            p("what the twin pays as much as the target and so cancels out of their ratio:")
            if tracing:
                p("the syscall tracing path, which every task takes while asyncprobe's syscall")
                p("tracepoints are on: one service by itself with an ftrace syscall event that")
                p("nothing triggers enabled in place of asyncprobe, bracketed like \"alone\"")
                p("(median, 95% CI), paid for the share of the run they were attached (the")
                p("summary's selector_hook_share: at the start, then 0.5 s in 10); and the")
                p("sched_switch program's mean run for each of the target's switches in and out:")
            else:
                p("%.1f ns more per syscall of any process while asyncprobe watches, and the"
                  % syscall_ns)
                p("sched_switch program's mean run for each of the target's switches in and out:")
            for v, sr, swr, swn, trp, share in wide_parts:
                path = ""
                if trp:
                    path = "; tracing path %.3f [%.3f..%.3f] over %d pairs, %.0f%% of the run" % (
                        (statistics.median(trp),) + median_ci(trp) + (len(trp), 100 * share))
                p("  %-8s %9s syscalls/s, %7s switches/s x %.0f ns%s" % (
                    v, fmt(sr, ",.0f"), fmt(swr, ",.0f"), swn, path))
            if alone:
                p("\"alone\": %s pairs on one service by itself, each watched segment between"
                  % "/".join(str(len(x)) for x in alone.values()))
                p("unwatched ones (median, 99% CI): coarse, but it sees what falls on the")
                p("target's CPU as a whole, which the twins share (a line fails on it only")
                p("when that interval, of 5 pairs or more, is wholly below the budget).")
            p("The sequential runs scatter by more than the budget: their ratios, with")
            p("baseline-again's (an A/A test) beside:")
            lines.extend(notes)
    text = "\n".join(lines)
    print(text)
    if out:
        with open(out, "w") as f:
            f.write(text + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--markdown", help="also write the tables to this file")
    ap.add_argument("--pairs", type=int, default=24,
                    help="after the rounds, twin pairs per variant that the budget's "
                    "throughput and p99 lines are judged on (0: judge the rounds)")
    ap.add_argument("--twin", type=int, metavar="PAIRS", default=0,
                    help="instead: the target-side cost measured on twin services, "
                    "PAIRS off/on segment pairs per variant")
    ap.add_argument("--solo", type=int, metavar="PAIRS", default=None,
                    help="after the twin pairs, PAIRS watched/unwatched pairs on one "
                    "service alone: what the twin cannot see (0: none; default 10 "
                    "after --pairs, none after --twin)")
    ap.add_argument("--tracing", type=int, metavar="PAIRS", default=None,
                    help="after the twin pairs, PAIRS pairs on one service alone with "
                    "the kernel's syscall tracing path on and off (an ftrace event in "
                    "asyncprobe's place): what asyncprobe's syscall tracepoints cost "
                    "every task, which the twin cannot see (default 10 after --pairs, none "
                    "after --twin; none where asyncprobe's selector hook is not a syscall "
                    "tracepoint)")
    ap.add_argument("--pool", action="store_true",
                    help="judge the twin figures on the pairs of every run of this "
                    "build so far (kept in .output/bench/twin-pairs.jsonl), this one "
                    "included: repeat a run to narrow the interval")
    a = ap.parse_args()
    if a.solo is None:
        a.solo = 0 if a.twin else 10
    variants = [v for v in a.variants.split(",") if v]
    configs = [c for c in a.configs.split(",") if c]
    for v in variants:
        if v not in VARIANTS:
            sys.exit("overhead: unknown variant %r (%s)" % (v, ", ".join(VARIANTS)))
    for c in configs:
        if c not in CONFIGS:
            sys.exit("overhead: unknown configuration %r (%s)" % (c, ", ".join(CONFIGS)))
    if "baseline" not in configs:
        configs.insert(0, "baseline")
    if os.geteuid() != 0:
        sys.exit("overhead: needs root (BPF, perf)")
    if (os.cpu_count() or 1) < 2:
        sys.exit("overhead: needs two CPUs (the target on one, the load on the other)")
    for tool in ("wrk", "perf", "taskset"):
        if not any(os.access(os.path.join(d, tool), os.X_OK)
                   for d in os.environ.get("PATH", "").split(":")):
            sys.exit("overhead: %s is not installed (make deps)" % tool)
    austin = None
    if "austin" in configs:
        r = subprocess.run([os.path.join(ROOT, "tests", "setup", "austin.sh")],
                           capture_output=True, text=True)
        if r.returncode == 0:
            austin = r.stdout.strip()
        else:
            print("overhead: no Austin, left out: " + r.stderr.strip(), file=sys.stderr)
            configs.remove("austin")
    ensure_tracefs()
    if a.tracing is None:
        a.tracing = (0 if a.twin else 10) if tracing_hooked() else 0
    os.makedirs(os.path.join(ROOT, ".output", "bench"), exist_ok=True)
    global BUILD
    BUILD = build_id()
    run_id = time.strftime("%Y-%m-%dT%H:%M:%S")
    if a.twin:
        print("asyncprobe (defaults) on one of two equal services sharing CPU %s, %g s "
              "segments:" % (TARGET_CPU, a.seconds))
        print("its throughput and p99 latency relative to its twin's, watched / not watched")
        for v in variants:
            pairs = twin(v, a.twin, a.seconds)
            pairs_log(run_id, v, a.seconds, pairs)
            for what, rs in (("throughput", [t for t, _ in pairs]), ("p99", [p for _, p in pairs])):
                print("  %-8s %-10s median %.3f  (quartiles %.3f..%.3f, %d pairs; "
                      "95%% CI of the median %.3f..%.3f)" % (
                          (v, what) + spread_of(rs) + (len(rs),) + median_ci(rs)), flush=True)
            if a.pool:
                print_pooled(v, a.seconds)
            if a.solo > 0:
                rs = solo(v, a.solo, a.seconds)
                print("  %-8s alone      median %.3f  (quartiles %.3f..%.3f, %d pairs on one "
                      "service by itself; 99%% CI of the median %.3f..%.3f)" % (
                          (v,) + spread_of(rs) + (len(rs),) + median_ci(rs, level=0.99)),
                      flush=True)
            if a.tracing > 0:
                rs = tracing_path(v, a.tracing, a.seconds)
                print("  %-8s tracing    median %.3f  (quartiles %.3f..%.3f, %d pairs on one "
                      "service by itself, an ftrace syscall event on instead of asyncprobe; "
                      "95%% CI of the median %.3f..%.3f)" % (
                          (v,) + spread_of(rs) + (len(rs),) + median_ci(rs)), flush=True)
        return
    runs = []
    same = [c for c in configs if c != "asyncio-debug"]
    for rnd in range(a.rounds):
        for v in variants:
            # the configurations that attach to a running service take
            # turns on one: no difference between processes in the ratios;
            # the order rotates, so that none always runs first
            k = rnd % len(same)
            order = [(c, False) for c in same[k:] + same[:k]]
            if "asyncio-debug" in configs:  # needs a service started so
                order.append(("asyncio-debug", True))
            svc = None
            try:
                for c, debug in order:
                    if svc is None or debug:
                        if svc:
                            svc.stop()
                        svc = Service(v, debug)
                    print("  round %d/%d %-8s %-14s" % (rnd + 1, a.rounds, v, c),
                          end="", flush=True, file=sys.stderr)
                    r = Run(v, c, a.seconds, austin).go(svc)
                    r.round = rnd
                    if r.errors:
                        print(" not counted, wrk saw failed requests (%s)" % r.errors,
                              file=sys.stderr)
                    else:
                        print(" %8.0f req/s" % r.rps, file=sys.stderr)
                    runs.append(r)
            finally:
                if svc:
                    svc.stop()
    precise, alone, tracing, syscall_ns = {}, {}, {}, 0.0
    if a.pairs > 0 and "asyncprobe" in configs:
        for v in variants:
            print("  twin services %-8s %d pairs" % (v, a.pairs), file=sys.stderr, flush=True)
            pairs = twin(v, a.pairs, a.seconds)
            pairs_log(run_id, v, a.seconds, pairs)
            precise[v] = judged(v, a.seconds, pairs, a.pool)
            if a.solo > 0:
                print("  one service alone %-8s %d pairs" % (v, a.solo), file=sys.stderr,
                      flush=True)
                alone[v] = solo(v, a.solo, a.seconds)
            if a.tracing > 0:
                print("  syscall tracing path %-8s %d pairs" % (v, a.tracing), file=sys.stderr,
                      flush=True)
                tracing[v] = tracing_path(v, a.tracing, a.seconds)
        syscall_ns = syscall_added_ns()
    report(runs, variants, configs, a.rounds, a.seconds, a.markdown, precise, syscall_ns, alone,
           tracing)


if __name__ == "__main__":
    main()
