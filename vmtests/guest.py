"""The tests run inside each test VM (see vmtest.py): `asyncprobe check`,
then a stall and a blocking syscall of a real asyncio service on
/usr/bin/python3.11, found with the right function, file and line.

Usage: guest.py --bin ASYNCPROBE --out DIR.  Writes DIR/result.json
({"kernel", "check": {"rc", "output"}, "features", "uses", "tests":
[{"name", "ok", "seconds", "detail"}]}); exit 0 when every test passed.
Runs on the host too, which is how it is tested.
"""
import argparse
import json
import os
import platform
import queue
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOAD = os.path.join(HERE, "workload.py")
PYTHON = "/usr/bin/python3.11"
# emulated CPUs are slow: these bound a hang, they do not time anything
SLOW = 180


class Lines:
    """A pipe's lines, read with a timeout."""

    def __init__(self, pipe):
        self.q = queue.Queue()
        self.all = []
        threading.Thread(target=self._pump, args=(pipe,), daemon=True).start()

    def _pump(self, pipe):
        for line in pipe:
            self.q.put(line)
        self.q.put(None)

    def until(self, pred, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                line = self.q.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                return None
            if line is None:
                return None
            self.all.append(line)
            if pred(line):
                return line
        return None

    def rest(self, timeout):
        self.until(lambda line: False, timeout)
        return self.all


def marker_line(name):
    with open(WORKLOAD) as f:
        for no, text in enumerate(f, 1):
            if "# LINE:%s" % name in text:
                return no
    raise LookupError(name)


def check(binary):
    """asyncprobe check: its exit code, output, the features that work
    and what a run uses."""
    r = subprocess.run([binary, "check"], capture_output=True, text=True, timeout=SLOW * 2)
    features, uses = [], ""
    for line in r.stdout.splitlines():
        words = line.split()
        if line.startswith("  ") and len(words) >= 2 and words[1] == "ok":
            features.append(words[0])
        if line.startswith("asyncprobe can run here: it uses "):
            uses = line.split(" uses ", 1)[1]
    return r.returncode, r.stdout + r.stderr, features, uses


def leaf_is(event, function, line):
    st = event.get("stack") or []
    return bool(st) and st[0]["function"] == function and st[0]["line"] == line and \
        st[0]["file"] == WORKLOAD


def watch_service(binary, *options):
    """The workload watched from start to end: the JSON events, or an
    exception saying what went wrong."""
    trigger = "/tmp/vmtest-trigger-%d" % os.getpid()
    wl = subprocess.Popen([PYTHON, WORKLOAD, trigger], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    probe = None
    try:
        out = Lines(wl.stdout)
        if not out.until(lambda l: l.strip() == "ready", SLOW):
            raise AssertionError("the workload never got ready")
        probe = subprocess.Popen([binary, "-p", str(wl.pid), "-f", "json", *options],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        err = Lines(probe.stderr)
        if not err.until(lambda l: "watching PID" in l, SLOW):
            raise AssertionError("asyncprobe did not start: %s" % "".join(err.rest(1)))
        events = Lines(probe.stdout)
        open(trigger, "w").close()
        if not out.until(lambda l: l.strip() == "done", SLOW):
            raise AssertionError("the workload never finished")
        probe.send_signal(signal.SIGINT)
        lines = events.rest(SLOW)
        if probe.wait(SLOW) != 0:
            raise AssertionError("asyncprobe exited %d: %s" % (probe.returncode,
                                                              "".join(err.rest(1))))
        return [json.loads(l) for l in lines if l.strip()]
    finally:
        for p in (probe, wl):
            if p and p.poll() is None:
                p.kill()
                p.wait()
        if os.path.exists(trigger):
            os.unlink(trigger)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    result = {"kernel": platform.release(), "tests": []}

    def record(name, ok, t0, detail=""):
        secs = time.monotonic() - t0
        result["tests"].append({"name": name, "ok": ok, "seconds": round(secs, 1),
                                "detail": detail})
        print("%s %s (%.1f s)%s" % ("PASS" if ok else "FAIL", name, secs,
                                    ": " + detail if detail else ""), flush=True)
        # after each test: what ran is known even if the VM dies
        with open(os.path.join(args.out, "result.json.tmp"), "w") as f:
            json.dump(result, f, indent=1)
        os.rename(os.path.join(args.out, "result.json.tmp"), os.path.join(args.out, "result.json"))

    t0 = time.monotonic()
    rc, output, features, uses = check(args.bin)
    print(output, flush=True)
    result.update(check={"rc": rc, "output": output}, features=features, uses=uses)
    record("check", rc == 0, t0, "" if rc == 0 else "exit %d" % rc)

    # what a run uses by default, then each fallback this kernel loads
    # (check lists them cheapest first, the order a run tries them in)
    variants = [None] + [f.split("/", 1)[1] for f in features if f.startswith("hooks/")][1:]
    stall, block = marker_line("stall"), marker_line("block")
    for hooks in variants:
        t0 = time.monotonic()
        try:
            events = watch_service(args.bin, *(["--hooks", hooks] if hooks else []))
            failure = None
        except Exception as e:  # noqa: BLE001 - every failure is a result
            events, failure = [], str(e)
        stalls = [e for e in events if e["event"] == "stall" and leaf_is(e, "vm_stall", stall)]
        blocks = [e for e in events if e["event"] == "blocking_syscall" and
                  leaf_is(e, "vm_block", block) and e["syscall"] == "clock_nanosleep"]
        ok_stall = bool(stalls) and stalls[0]["duration_ms"] >= 350
        ok_block = bool(blocks) and blocks[0]["duration_ms"] >= 250
        said_stall = failure or ("%.0f ms at vm_stall (workload.py:%d)" % (
            stalls[0]["duration_ms"], stall) if stalls else "stall not found")
        said_block = failure or ("clock_nanosleep %.0f ms at vm_block (workload.py:%d)" % (
            blocks[0]["duration_ms"], block) if blocks else "blocking call not found")
        if hooks is None:
            record("stall", ok_stall, t0, said_stall)
            record("blocking", ok_block, t0, said_block)
        else:
            # a fallback: both findings, in one line
            record("hooks=" + hooks, ok_stall and ok_block, t0,
                   said_stall if not ok_stall else said_block if not ok_block else
                   "stall %.0f ms, clock_nanosleep %.0f ms, at their lines" % (
                       stalls[0]["duration_ms"], blocks[0]["duration_ms"]))

    return 0 if all(t["ok"] for t in result["tests"]) else 1


if __name__ == "__main__":
    sys.exit(main())
