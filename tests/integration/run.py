#!/usr/bin/python3
"""Integration tests: real BPF on this kernel against real Python processes.

Each test starts a workload from tests/workloads/, attaches ./asyncprobe to
it with --format json, lets the workload misbehave once the loop has been
found, and asserts on what asyncprobe reported: event kind, syscall,
duration range, and the culprit's function, file and exact line.

Usage: run.py [-k SUBSTRING] [-v]          (run as root)
Ends with the line "N passed, N failed, N skipped".
"""
import argparse
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROBE = os.path.join(ROOT, "asyncprobe")
WORKLOADS = os.path.join(ROOT, "tests", "workloads")
MISBEHAVE = os.path.join(WORKLOADS, "misbehave.py")
BAD_MS = 250  # what each bad call in misbehave.py lasts


def pyenv_python(version):
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    try:
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True,
                              check=True).stdout.strip() or root
    except (OSError, subprocess.CalledProcessError):
        pass
    exe = os.path.join(root, "versions", version, "bin",
                       "python" + ".".join(version.split(".")[:2]))
    return exe if os.access(exe, os.X_OK) else None


INTERPRETERS = [
    ("debian-3.11", "/usr/bin/python3.11"),
    ("pyenv-3.11.7", pyenv_python("3.11.7")),
]


def marker_line(mode, path=MISBEHAVE):
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if line.rstrip().endswith("# LINE:" + mode):
                return n
    raise AssertionError("no # LINE:%s marker in %s" % (mode, path))


class Skip(Exception):
    pass


class Lines:
    """Lines of a pipe, readable with a timeout."""

    def __init__(self, pipe):
        self.q = queue.Queue()
        self.all = []
        t = threading.Thread(target=self._pump, args=(pipe,), daemon=True)
        t.start()

    def _pump(self, pipe):
        for line in pipe:
            self.q.put(line)
        self.q.put(None)

    def next(self, timeout):
        try:
            line = self.q.get(timeout=timeout)
        except queue.Empty:
            return ""
        if line is not None:
            self.all.append(line)
        return line

    def until(self, pred, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            line = self.next(max(0.01, end - time.monotonic()))
            if line is None:
                return None
            if line and pred(line):
                return line
        return None

    def rest(self, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.next(max(0.01, end - time.monotonic())) is None:
                break
        return self.all


def run_workload(python, mode, extra=(), settle=0.3, probe_args=()):
    """Start misbehave.py MODE, attach asyncprobe, trigger, collect events."""
    tmp = tempfile.mkdtemp(prefix="asyncprobe-test-")
    trigger = os.path.join(tmp, "go")
    wl = subprocess.Popen([python, MISBEHAVE, mode, trigger, *extra],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    probe = None
    try:
        time.sleep(settle)
        if wl.poll() is not None:
            raise AssertionError("workload died: " + wl.stderr.read())
        probe = subprocess.Popen([PROBE, "-p", str(wl.pid), "-f", "json", "-d", "30",
                                  *probe_args],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out = Lines(probe.stdout)
        if not out.until(lambda l: '"event":"loop"' in l, 10):
            err = probe.stderr.read() if probe.poll() is not None else "(still running)"
            raise AssertionError("no loop event within 10 s; stderr: " + err)
        open(trigger, "w").close()
        wl_out = Lines(wl.stdout)
        if not wl_out.until(lambda l: l.strip() == "done", 20):
            raise AssertionError("workload did not finish its bad calls")
        time.sleep(0.3)
        probe.send_signal(signal.SIGINT)
        lines = out.rest(10)
        rc = probe.wait(10)
        err = probe.stderr.read()
        if rc != 0:
            raise AssertionError("asyncprobe exit %d: %s" % (rc, err))
        events = [json.loads(l) for l in lines if l.strip()]
        return events, wl.pid
    finally:
        for p in (probe, wl):
            if p and p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def check_common(events, pid):
    assert events, "no output"
    for e in events:
        for k in ("event", "ts", "pid"):
            assert k in e, "event without %s: %s" % (k, e)
        assert e["pid"] == pid
        assert isinstance(e["ts"], float)
    s = events[-1]
    assert s["event"] == "summary", "last line is not the summary: %s" % s
    for k in ("start_ts", "end_ts", "loops", "stalls", "blocking_syscalls"):
        assert k in s, "summary without " + k
    assert s["end_ts"] > s["start_ts"]
    assert s["loops"], "summary lists no loop"
    for l in s["loops"]:
        for k in ("tid", "iterations", "busy_ms", "idle_ms"):
            assert k in l, "loop without " + k
        assert l["iterations"] > 0
    return s


def frame_ok(fr, function, mode):
    return (fr["function"] == function and fr["file"] == MISBEHAVE and
            fr["line"] == marker_line(mode) and isinstance(fr["line"], int))


def describe(e):
    st = e.get("stack") or []
    return "%s %s %.0fms top=%s" % (e["event"], e.get("syscall", ""), e["duration_ms"],
                                    ["%s:%s:%s" % (f["function"], os.path.basename(f["file"]),
                                                   f["line"]) for f in st[:3]])


def expect_events(events, kind, n, lo, hi, pred, what):
    found = [e for e in events if e["event"] == kind]
    good = [e for e in found if lo <= e["duration_ms"] <= hi and pred(e)]
    assert len(good) >= n, "expected %d %s events with %s in %d..%d ms; got:\n  %s" % (
        n, kind, what, lo, hi, "\n  ".join(describe(e) for e in found) or "(none)")
    return good


def expect_stalls(events, function, mode, n=3):
    return expect_events(events, "stall", n, BAD_MS * 0.9, BAD_MS * 1.6,
                         lambda e: e["stack"] and frame_ok(e["stack"][0], function, mode),
                         "%s at line %d innermost" % (function, marker_line(mode)))


def expect_blocking(events, syscall, function, mode, innermost=True, n=3, pred=None):
    def ok(e):
        if e["syscall"] != syscall:
            return False
        frames = e["stack"][:1] if innermost else e["stack"]
        if not any(frame_ok(f, function, mode) for f in frames):
            return False
        return pred(e) if pred else True

    return expect_events(events, "blocking_syscall", n, BAD_MS * 0.9, BAD_MS * 1.6, ok,
                         "%s in %s line %d" % (syscall, function, marker_line(mode)))


# --- tests ------------------------------------------------------------------

def t_cpu(py):
    ev, pid = run_workload(py, "cpu")
    s = check_common(ev, pid)
    stalls = expect_stalls(ev, "burn", "cpu")
    assert all(e["samples"] >= 5 for e in stalls), "too few samples: %s" % stalls
    assert not [e for e in ev if e["event"] == "blocking_syscall"], "unexpected blocking"
    assert s["stalls"] == len([e for e in ev if e["event"] == "stall"])


def t_sleep(py):
    ev, pid = run_workload(py, "sleep")
    check_common(ev, pid)
    expect_blocking(ev, "clock_nanosleep", "nap", "sleep")
    expect_stalls(ev, "nap", "sleep")


def t_recv(py):
    ev, pid = run_workload(py, "recv")
    check_common(ev, pid)
    expect_blocking(ev, "recvfrom", "recv_late", "recv",
                    pred=lambda e: e.get("fd_kind") == "tcp" and
                    re.fullmatch(r"127\.0\.0\.1:\d+", e.get("fd_target", "")) is not None
                    and isinstance(e.get("fd"), int))


def t_pipe(py):
    ev, pid = run_workload(py, "pipe")
    check_common(ev, pid)
    expect_blocking(ev, "read", "read_pipe", "pipe",
                    pred=lambda e: e.get("fd_kind") == "pipe" and
                    e.get("fd_target", "").startswith("pipe:["))


def t_subprocess(py):
    ev, pid = run_workload(py, "subprocess")
    check_common(ev, pid)
    expect_blocking(ev, "wait4", "run_child", "subprocess", innermost=False)


def t_lock(py):
    ev, pid = run_workload(py, "lock")
    check_common(ev, pid)
    expect_blocking(ev, "futex", "take_lock", "lock")


def t_clean(py):
    """Only awaits on the loop; a worker thread selects, sleeps and burns
    CPU next to it: no finding, and the worker is not called a loop."""
    ev, pid = run_workload(py, "clean", ["--noise"])
    s = check_common(ev, pid)
    bad = [e for e in ev if e["event"] in ("stall", "blocking_syscall")]
    assert not bad, "a clean service got findings: %s" % [describe(e) for e in bad]
    assert s["stalls"] == 0 and s["blocking_syscalls"] == 0
    assert s["loops"][0]["idle_ms"] > s["loops"][0]["busy_ms"]
    assert [l["tid"] for l in s["loops"]] == [pid], "only the main thread runs a loop"


def t_two_loops(py):
    """Two event loops in two threads, both misbehaving: both are found."""
    ev, pid = run_workload(py, "sleep", ["--two-loops"])
    s = check_common(ev, pid)
    blocks = expect_blocking(ev, "clock_nanosleep", "nap", "sleep", n=6)
    tids = {e["tid"] for e in blocks}
    assert len(tids) == 2 and pid in tids, tids
    assert {l["tid"] for l in s["loops"]} == tids


def t_thread(py):
    ev, pid = run_workload(py, "sleep", ["--thread"])
    s = check_common(ev, pid)
    blocks = expect_blocking(ev, "clock_nanosleep", "nap", "sleep")
    assert all(e["tid"] != pid for e in blocks), "loop thread should not be the main thread"
    assert [l for l in s["loops"] if l["tid"] == blocks[0]["tid"]]


def t_poll_first(py):
    """poll() from subprocess before asyncio.run on the same thread: the
    thread is first rejected as a loop, then found when its loop starts."""
    ev, pid = run_workload(py, "sleep", ["--poll-first"], settle=0.1)
    check_common(ev, pid)
    expect_blocking(ev, "clock_nanosleep", "nap", "sleep")


def t_uvloop(py):
    if subprocess.run([py, "-c", "import uvloop"], capture_output=True).returncode:
        raise Skip("uvloop is not importable by " + py)
    ev, pid = run_workload(py, "cpu", ["--uvloop"])
    check_common(ev, pid)
    expect_stalls(ev, "burn", "cpu")
    ev, pid = run_workload(py, "sleep", ["--uvloop"])
    expect_blocking(ev, "clock_nanosleep", "nap", "sleep")


def t_text_output(py):
    """The default text format names the culprit on one line."""
    tmp = tempfile.mkdtemp(prefix="asyncprobe-test-")
    trigger = os.path.join(tmp, "go")
    wl = subprocess.Popen([py, MISBEHAVE, "sleep", trigger], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.3)
        probe = subprocess.Popen([PROBE, "-p", str(wl.pid), "-d", "4"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out = Lines(probe.stdout)
        assert out.until(lambda l: l.startswith("LOOP"), 10), "no LOOP line"
        open(trigger, "w").close()
        lines = out.rest(15)
        assert probe.wait(10) == 0
        text = "".join(lines)
        want = "nap (workloads/misbehave.py:%d)" % marker_line("sleep")
        assert re.search(r"^BLOCKING +2\d\d ms  clock_nanosleep  loop tid \d+  " + re.escape(want),
                         text, re.M), text
        assert re.search(r"^STALL +2\d\d ms  loop tid \d+  " + re.escape(want), text, re.M), text
        assert "Summary: PID %d" % wl.pid in text
    finally:
        wl.kill()
        wl.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def t_hang(py):
    """A loop stuck for 2.5 s is reported after ~1 s, then when it ends."""
    ev, pid = run_workload(py, "hang")
    check_common(ev, pid)
    early = [e for e in ev if e["event"] == "stall" and e.get("in_progress")]
    assert len(early) == 1, [describe(e) for e in ev if e["event"] == "stall"]
    assert 1000 <= early[0]["duration_ms"] < 1600, describe(early[0])
    assert frame_ok(early[0]["stack"][0], "burn", "cpu"), describe(early[0])
    final = expect_events(ev, "stall", 1, 2400, 2900,
                          lambda e: not e.get("in_progress") and
                          frame_ok(e["stack"][0], "burn", "cpu"), "burn")
    assert final[0]["ts"] > early[0]["ts"]

    ev, pid = run_workload(py, "deadlock")
    early = [e for e in ev if e["event"] == "blocking_syscall" and e.get("in_progress")]
    assert len(early) == 1 and early[0]["syscall"] == "futex", [describe(e) for e in ev]
    assert frame_ok(early[0]["stack"][0], "take_lock", "lock"), describe(early[0])
    expect_events(ev, "blocking_syscall", 1, 2400, 2900,
                  lambda e: not e.get("in_progress") and e["syscall"] == "futex", "futex")


def t_hooks(py):
    """Every selector hook this kernel allows finds the same culprits; the
    ones it does not allow fail with a clear message."""
    worked = 0
    for hooks in ("fentry", "kprobe", "tracepoint", "sys_enter"):
        try:
            ev, pid = run_workload(py, "sleep", probe_args=("--hooks", hooks))
        except AssertionError as e:
            assert "failed to load and attach BPF programs" in str(e) or \
                "no loop event" in str(e), (hooks, e)
            continue
        check_common(ev, pid)
        expect_blocking(ev, "clock_nanosleep", "nap", "sleep")
        expect_stalls(ev, "nap", "sleep")
        worked += 1
    assert worked >= 2, "fewer than two hook variants work here"


PER_INTERPRETER = [t_hang, t_cpu, t_sleep, t_recv, t_pipe, t_subprocess, t_lock, t_clean,
                   t_hooks, t_thread, t_two_loops, t_poll_first, t_uvloop, t_text_output]


# --- CLI behaviour (no interpreter needed) ----------------------------------

def cli(args, timeout=15):
    p = subprocess.run([PROBE, *args], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def t_cli_help():
    rc, out, _ = cli(["--help"])
    assert rc == 0 and "EXAMPLES" in out and "--stall-threshold" in out, out


def t_cli_no_such_pid():
    rc, _, err = cli(["-p", "4194000"])
    assert rc == 1 and "no process with PID 4194000" in err, (rc, err)


def t_cli_not_python():
    p = subprocess.Popen(["sleep", "30"])
    try:
        rc, _, err = cli(["-p", str(p.pid), "-d", "1"])
        assert rc == 1 and "is not a CPython process" in err, (rc, err)
    finally:
        p.kill()
        p.wait()


def t_cli_bad_args():
    for args, msg in ((["-p", "abc"], "invalid PID"),
                      (["-p", "1", "--stall-threshold", "-5"], "invalid stall threshold"),
                      (["-p", "1", "-d", "0"], "invalid duration"),
                      (["-p", "1", "--format", "xml"], "unknown format"),
                      ([], "-p PID is required")):
        rc, _, err = cli(args)
        assert rc == 2 and msg in err, (args, rc, err)


def t_cli_no_privilege():
    """Without the capabilities, one line says which are missing."""
    if not shutil.which("setpriv"):
        raise Skip("setpriv not installed")
    p = subprocess.Popen(["/usr/bin/python3.11", "-c",
                          "import asyncio; asyncio.run(asyncio.sleep(30))"])
    try:
        time.sleep(0.2)
        r = subprocess.run(["setpriv", "--inh-caps=-all", "--bounding-set=-all,+bpf,+perfmon",
                            PROBE, "-p", str(p.pid)], capture_output=True, text=True, timeout=15)
        assert r.returncode == 1, (r.returncode, r.stderr)
        assert "missing capabilities: CAP_SYS_PTRACE;" in r.stderr, r.stderr
        r = subprocess.run(["setpriv", "--inh-caps=-all", "--bounding-set=-all",
                            PROBE, "-p", str(p.pid)], capture_output=True, text=True, timeout=15)
        assert r.returncode == 1 and \
            "missing capabilities: CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE" in r.stderr, r.stderr
    finally:
        p.kill()
        p.wait()


def t_cli_target_exits():
    """The run ends with a summary, exit 0, soon after the target exits."""
    py = "/usr/bin/python3.11"
    wl = subprocess.Popen([py, "-c", "import asyncio\nasyncio.run(asyncio.sleep(1.5))"])
    time.sleep(0.3)
    t0 = time.monotonic()
    rc, out, err = cli(["-p", str(wl.pid), "-f", "json"])
    took = time.monotonic() - t0
    wl.wait()
    assert rc == 0, (rc, err)
    assert json.loads(out.strip().splitlines()[-1])["event"] == "summary"
    assert took < 6, "asyncprobe outlived its target by too much: %.1f s" % took


GLOBAL = [t_cli_help, t_cli_no_such_pid, t_cli_not_python, t_cli_bad_args,
          t_cli_no_privilege, t_cli_target_exits]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-k", default="", help="run tests whose name contains this")
    ap.add_argument("-v", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("integration tests need root (BPF)", file=sys.stderr)
        return 2
    cases = [(t.__name__, t, ()) for t in GLOBAL]
    for name, py in INTERPRETERS:
        for t in PER_INTERPRETER:
            cases.append(("%s[%s]" % (t.__name__, name), t, (py,)))
    passed = failed = skipped = 0
    for name, fn, fargs in cases:
        if args.k not in name:
            continue
        if fargs and fargs[0] is None:
            print("SKIP %s: interpreter not installed" % name, flush=True)
            skipped += 1
            continue
        t0 = time.monotonic()
        try:
            fn(*fargs)
        except Skip as e:
            print("SKIP %s: %s" % (name, e), flush=True)
            skipped += 1
            continue
        except Exception as e:  # noqa: BLE001 - report every failure
            failed += 1
            print("FAIL %s (%.1fs): %s" % (name, time.monotonic() - t0, e), flush=True)
            if args.v:
                traceback.print_exc()
            continue
        passed += 1
        print("PASS %s (%.1fs)" % (name, time.monotonic() - t0), flush=True)
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
