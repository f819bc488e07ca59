#!/usr/bin/env python3
"""The Prometheus exporter, proven against a real Prometheus.

asyncprobe --listen --match finds misbehaving services (and one started
later), a real Prometheus server scrapes it every second and evaluates the
rules; then every PromQL expression of the dashboard and of the rules is
evaluated through Prometheus' HTTP API and must return data.  Also: the
exposition passes `promtool check metrics`, the rules pass `promtool
check rules` and `promtool test rules`, the exporter serves 1,000 scrapes
from 50 concurrent clients, survives malformed and slow requests, and
keeps serving when a target exits.

Ends with the line "N passed, N failed, N skipped".
"""
import concurrent.futures
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ASYNCPROBE = os.environ.get("ASYNCPROBE") or os.path.join(ROOT, "asyncprobe")
SERVICE = os.path.join(ROOT, "tests", "workloads", "service.py")
DASHBOARDS = os.path.join(ROOT, "dashboards")
RULES = os.path.join(DASHBOARDS, "asyncprobe.rules.yml")
PYTHON = "/usr/bin/python3.11"  # Debian's: has the gc USDT probes
TAG = "asyncprobe-test-svc"
RUN_S = 40  # how long Prometheus watches before the queries
# The rules as Prometheus runs them here: the same expressions with time
# compressed (windows and `for`), so that alerts can fire within RUN_S.
SCALE = (("[5m]", "[10s]"), ("[10m]", "[20s]"), ("[30m]", "[20s]"),
         ("for: 30s", "for: 2s"), ("for: 10m", "for: 5s"), ("for: 15m", "for: 5s"),
         ("for: 30m", "for: 5s"))

results = []


def check(name, fn):
    t0 = time.monotonic()
    try:
        fn()
    except AssertionError as e:
        results.append(False)
        print("FAIL %s (%.1fs): %s" % (name, time.monotonic() - t0, e), flush=True)
        return
    except Exception as e:  # a harness error is a failure too
        results.append(False)
        print("FAIL %s (%.1fs): %r" % (name, time.monotonic() - t0, e), flush=True)
        return
    results.append(True)
    print("PASS %s (%.1fs)" % (name, time.monotonic() - t0), flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.headers.get("Content-Type"), r.read().decode()


def wait_for(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError("timed out after %gs waiting for %s" % (timeout, what))


def parse_metrics(text):
    """{(name, frozenset(labels)): value} of an exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
        assert m, "bad sample line: %r" % line
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def samples(metrics, name, **want):
    return [(dict(l), v) for (n, l), v in metrics.items()
            if n == name and all(dict(l).get(k) == w for k, w in want.items())]


class Scenario:
    """The services, the exporter and Prometheus, for all the checks."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="asyncprobe-exporter-")
        self.procs = []
        self.services = {}

    def spawn(self, argv, **kw):
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, **kw)
        self.procs.append(p)
        return p

    def service(self, name, *extra):
        p = self.spawn([PYTHON, SERVICE, TAG, name, *extra],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.services[name] = p
        return p

    def start(self):
        self.service("a", "--hang", "9")
        self.service("b")
        # matches the regex but is no Python: left alone, not "failed"
        self.other = self.spawn(["perl", "-e", "sleep 300", "service.py", TAG],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        self.out = open(os.path.join(self.tmp, "findings.json"), "w")
        self.err_path = os.path.join(self.tmp, "stderr.txt")
        self.probe = self.spawn(
            [ASYNCPROBE, "--listen", "127.0.0.1:0", "--match", "service.py " + TAG,
             "--rescan", "0.5", "-f", "json", "--await-threshold", "60"],
            stdout=self.out, stderr=open(self.err_path, "w"))
        addr = wait_for(lambda: re.search(r"serving metrics at http://(\S+)/metrics",
                                          open(self.err_path).read()), 15, "the exporter")
        self.addr = addr.group(1)
        self.base = "http://%s" % self.addr
        self.start_ts = time.time()
        self.prometheus()

    def prometheus(self):
        self.prom_port = free_port()
        self.rules = os.path.join(self.tmp, "rules.yml")
        text = open(RULES).read()
        for a, b in SCALE:
            text = text.replace(a, b)
        with open(self.rules, "w") as f:
            f.write(text)
        cfg = os.path.join(self.tmp, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("""global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - %s
scrape_configs:
  - job_name: asyncprobe
    static_configs:
      - targets: ['%s']
""" % (self.rules, self.addr))
        self.prom = self.spawn(
            ["prometheus", "--config.file=" + cfg,
             "--storage.tsdb.path=" + os.path.join(self.tmp, "tsdb"),
             "--web.listen-address=127.0.0.1:%d" % self.prom_port,
             "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.tmp, "prometheus.log"), "w"))
        self.prom_url = "http://127.0.0.1:%d" % self.prom_port

        def ready():
            try:
                return http_get(self.prom_url + "/-/ready", timeout=2)[0] == 200
            except OSError:
                return False
        wait_for(ready, 30, "Prometheus to be ready")

    def query_range(self, expr, start, end, step=1):
        q = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
        _, _, body = http_get(self.prom_url + "/api/v1/query_range?" + q, timeout=30)
        r = json.loads(body)
        assert r["status"] == "success", "query failed: %s: %s" % (expr, r)
        return r["data"]["result"]

    def query(self, expr):
        q = urllib.parse.urlencode({"query": expr})
        _, _, body = http_get(self.prom_url + "/api/v1/query?" + q, timeout=30)
        r = json.loads(body)
        assert r["status"] == "success", "query failed: %s: %s" % (expr, r)
        return r["data"]["result"]

    def scrape(self):
        return parse_metrics(http_get(self.base + "/metrics")[2])

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.kill()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)


# --- checks that need nothing running -------------------------------------

def t_rules_check():
    r = subprocess.run(["promtool", "check", "rules", RULES], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def t_rules_unit_tests():
    r = subprocess.run(["promtool", "test", "rules", "asyncprobe.rules.test.yml"],
                       cwd=DASHBOARDS, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    tested = set(re.findall(r"alertname: (\w+)", open(os.path.join(DASHBOARDS, "asyncprobe.rules.test.yml")).read()))
    alerts = set(re.findall(r"- alert: (\w+)", open(RULES).read()))
    assert alerts <= tested, "alerts without a unit test: %s" % (alerts - tested)


def t_dashboard_current():
    r = subprocess.run([sys.executable, os.path.join(DASHBOARDS, "dashboard.py")],
                       capture_output=True, text=True, check=True)
    assert json.loads(r.stdout) == json.load(open(os.path.join(DASHBOARDS, "asyncprobe.json"))), \
        "dashboards/asyncprobe.json is not what dashboard.py writes: regenerate it"


def t_dashboard_panels():
    d = json.load(open(os.path.join(DASHBOARDS, "asyncprobe.json")))
    names = [v["name"] for v in d["templating"]["list"]]
    assert names == ["datasource", "job", "instance", "pid"], names
    for p in d["panels"]:
        if p["type"] == "row":
            continue
        assert p.get("title") and p.get("description"), p
        assert p["fieldConfig"]["defaults"].get("unit"), p["title"]
        assert p["datasource"]["uid"] == "${datasource}", p["title"]
        for t in p["targets"]:
            if "rate(" in t["expr"]:
                assert "[$__rate_interval]" in t["expr"] or "[$__range]" in t["expr"], t["expr"]


def t_listen_errors():
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        r = subprocess.run([ASYNCPROBE, "--listen", "127.0.0.1:%d" % port, "--match", "no-such-process-xyz"],
                           capture_output=True, text=True, timeout=10)
    finally:
        busy.close()
    assert r.returncode == 1, r
    assert "cannot listen on 127.0.0.1:%d: the port may be in use" % port in r.stderr, r.stderr
    r = subprocess.run([ASYNCPROBE, "--listen", "no-such-host.invalid:9477", "--match", "x"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "cannot resolve listen address 'no-such-host.invalid'" in r.stderr, r.stderr


# --- checks against the running scenario ----------------------------------

def t_exposition(sc):
    status, ctype, body = http_get(sc.base + "/metrics")
    assert status == 200
    assert ctype == "text/plain; version=0.0.4; charset=utf-8", ctype
    r = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, text=True)
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), r.stdout + r.stderr
    # histograms: cumulative buckets ending in +Inf == _count
    m = parse_metrics(body)
    for (name, labels), v in m.items():
        if name.endswith("_bucket") and ("le", "+Inf") in labels:
            rest = frozenset(l for l in labels if l[0] != "le")
            assert m[(name[:-7] + "_count", rest)] == v, name
    status, ctype, page = http_get(sc.base + "/")
    assert status == 200 and ctype.startswith("text/html") and "/metrics" in page


def t_discovery(sc):
    m = sc.scrape()
    pids = {l["pid"] for l, _ in samples(m, "asyncprobe_target_info")}
    want = {str(sc.services["a"].pid), str(sc.services["b"].pid)}
    assert want <= pids, "watching %s, want %s" % (pids, want)
    assert str(sc.other.pid) not in pids, "watching a process that is no Python"
    assert samples(m, "asyncprobe_targets", state="failed")[0][1] == 0, "the non-Python counts as failed"
    # a worker started later is found by the rescan
    c = sc.service("c")
    wait_for(lambda: str(c.pid) in {l["pid"] for l, _ in samples(sc.scrape(), "asyncprobe_target_info")},
             10, "the new service to be watched")


def t_findings_in_metrics(sc):
    a = str(sc.services["a"].pid)
    m = sc.scrape()
    stalls = samples(m, "asyncprobe_event_loop_stalls_total", pid=a)
    sites = {l["call_site"]: v for l, v in stalls}
    assert any(s.endswith("service.py:stall_here") and v > 0 for s, v in sites.items()), sites
    blocks = samples(m, "asyncprobe_blocking_syscalls_total", pid=a, syscall="clock_nanosleep")
    assert any(l["call_site"].endswith("service.py:sleep_here") and v > 0 for l, v in blocks), blocks
    gc = samples(m, "asyncprobe_gc_pause_seconds_count", pid=a)
    assert gc and sum(v for _, v in gc) > 0, "no GC pauses timed: %s" % gc
    lag = samples(m, "asyncprobe_event_loop_lag_seconds_bucket", pid=a, le="0.1")
    count = samples(m, "asyncprobe_event_loop_lag_seconds_count", pid=a)
    assert lag and count and count[0][1] > lag[0][1] > 0, (lag, count)
    # the hung loop has its gauge (the hang comes later)
    cur = samples(m, "asyncprobe_event_loop_current_iteration_seconds", pid=a)
    assert cur, "no current iteration gauge"
    # hygiene: a counter per kind from the start (long_await, as here, only
    # with --await-threshold); descriptors by kind (asyncio's self-pipe is a
    # unix socketpair, its selector an epoll fd)
    for kind in ("fd_growth", "cancel_ignored", "never_awaited", "task_destroyed_pending",
                 "exception_never_retrieved", "long_await"):
        assert samples(m, "asyncprobe_hygiene_findings_total", pid=a, kind=kind), kind
    fds = {l["kind"]: v for l, v in samples(m, "asyncprobe_open_fds", pid=a)}
    assert fds.get("unix", 0) >= 2 and fds.get("anon", 0) >= 1, fds


def t_task_rates(sc):
    # the service creates 1,560 tasks/s, 60 of them never finish
    a = sc.services["a"].pid
    r = sc.query('rate(asyncprobe_tasks_created_total{pid="%d"}[10s])' % a)
    assert r, "no task rate"
    rate = float(r[0]["value"][1])
    assert 1000 < rate < 2200, "created %.0f/s, want ~1560" % rate
    alive = float(sc.query('asyncprobe_tasks_alive{pid="%d"}' % a)[0]["value"][1])
    assert alive > 300, "alive %g: the leak should show" % alive


def t_load(sc):
    def one(_):
        status, _, body = http_get(sc.base + "/metrics", timeout=30)
        return status == 200 and "asyncprobe_build_info" in body

    # slow clients (half a request, then nothing) must not hold others up
    slow = []
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", int(sc.addr.rsplit(":", 1)[1])))
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        slow.append(s)
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        ok = list(pool.map(one, range(1000)))
    took = time.monotonic() - t0
    for s in slow:
        s.close()
    assert all(ok), "%d of 1000 scrapes failed" % ok.count(False)
    print("  1000 scrapes from 50 clients in %.1f s (%.0f/s)" % (took, 1000 / took))


def raw(sc, data, read=True):
    host, port = sc.addr.rsplit(":", 1)
    # the server may answer, or close, or wait for the rest until its
    # timeout: all fine, as long as it keeps serving everyone else
    with socket.create_connection((host, int(port)), timeout=2) as s:
        s.sendall(data)
        if not read:
            return b""
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                return out
            if not chunk:
                return out
            out += chunk


def t_malformed(sc):
    for bad in (b"GARBAGE\r\n\r\n", b"GET /metrics HTTP/9.9\r\n\r\n", b"\x00\xff" * 100 + b"\r\n\r\n",
                b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                b"GET /metrics HTTP/1.1\r\n" + b"X-Big: " + b"b" * 100000 + b"\r\n\r\n"):
        out = raw(sc, bad)
        assert not out.startswith(b"HTTP/1.1 200"), "answered %r with %r" % (bad[:20], out[:40])
    out = raw(sc, b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
    assert out.startswith(b"HTTP/1.1 405"), out[:60]
    out = raw(sc, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 404"), out[:60]
    # a client that goes away mid-request
    raw(sc, b"GET /metrics HTTP/1.1\r\nHo", read=False)
    assert http_get(sc.base + "/metrics")[0] == 200
    assert sc.probe.poll() is None, "the exporter died"


def t_target_exits(sc):
    b = sc.services["b"]
    b.kill()
    b.wait()

    def dropped():
        m = sc.scrape()
        gone = str(b.pid) not in {l["pid"] for l, _ in samples(m, "asyncprobe_target_info")}
        return gone and samples(m, "asyncprobe_targets_exited_total")[0][1] >= 1
    wait_for(dropped, 5, "the exited service to be dropped")
    assert sc.probe.poll() is None, "the exporter died"


def strip_thresholds(expr):
    """An alert's signal: its expression without the comparisons."""
    return re.sub(r"\s*(>|<|>=|<=|==|!=)\s*[0-9.e+-]+\b", "", expr)


def dashboard_exprs():
    d = json.load(open(os.path.join(DASHBOARDS, "asyncprobe.json")))
    for p in d["panels"]:
        for t in p.get("targets", []):
            e = t["expr"]
            for var, val in (("$__rate_interval", "5s"), ("$__range", "60s"),
                             ("$job", ".*"), ("$instance", ".*"), ("$pid", ".*")):
                e = e.replace(var, val)
            yield "%s / %s" % (p["title"], t["refId"]), e
    for v in d["templating"]["list"]:
        if v["type"] == "query":
            m = re.match(r"label_values\((.*),\s*(\w+)\)$", v["query"]["query"])
            assert m, v["query"]
            sel = m.group(1).replace("$job", ".*").replace("$instance", ".*")
            yield "variable %s" % v["name"], "count by (%s) (%s)" % (m.group(2), sel)


def rule_exprs(path=RULES):
    text = open(path).read()
    for m in re.finditer(r"- (record|alert): (\S+)\n\s+(?:#[^\n]*\n\s+)*expr: \|\n((?:\s{10}[^\n]*\n)+)", text):
        yield m.group(1), m.group(2), " ".join(l.strip() for l in m.group(3).splitlines())


def t_dashboard_queries(sc):
    end = time.time()
    empty = []
    n = 0
    for name, e in dashboard_exprs():
        n += 1
        if not sc.query_range(e, sc.start_ts, end):
            empty.append("%s: %s" % (name, e))
    assert n >= 20, "only %d expressions found" % n
    assert not empty, "no data for:\n    " + "\n    ".join(empty)
    print("  %d dashboard expressions returned data" % n)


def t_rule_queries(sc):
    end = time.time()
    empty = []
    rules = list(rule_exprs())
    assert len(rules) == 17, "rules parsed: %s" % [r[1] for r in rules]
    # as written: every expression (an alert's without its threshold,
    # which a 40 s run cannot cross with 5 to 30 minute windows) has data
    for kind, name, e in rules:
        if kind == "alert":
            e = strip_thresholds(e)
        if not sc.query_range(e, sc.start_ts, end):
            empty.append("%s: %s" % (name, e))
    assert not empty, "no data for:\n    " + "\n    ".join(empty)
    # Prometheus evaluated every rule without an error
    _, _, body = http_get(sc.prom_url + "/api/v1/rules")
    for g in json.loads(body)["data"]["groups"]:
        for r in g["rules"]:
            assert r["health"] == "ok", "%s: %s" % (r["name"], r.get("lastError"))


def t_alerts_fire(sc):
    """With time compressed, the workloads fire every alert they provoke."""
    end = time.time()
    fired = {s["metric"]["alertname"]
             for s in sc.query_range('ALERTS{alertstate="firing"}', sc.start_ts, end)}
    missing = []
    for want in ("AsyncprobeEventLoopStalled", "AsyncprobeEventLoopStalls",
                 "AsyncprobeBlockingSyscalls", "AsyncprobeTaskChurn", "AsyncprobeTaskLeak"):
        if want not in fired:
            e = strip_thresholds([r[2] for r in rule_exprs(sc.rules) if r[1] == want][0])
            peak = max((float(v[1]) for series in sc.query_range(e, sc.start_ts, end)
                        for v in series["values"]), default=float("nan"))
            missing.append("%s (its signal peaked at %g)" % (want, peak))
    assert not missing, "never fired: %s; fired: %s" % (", ".join(missing), sorted(fired))
    # no events were lost: that one must stay quiet
    assert "AsyncprobeEventsLost" not in fired
    print("  fired: %s" % ", ".join(sorted(fired)))


def t_shutdown(sc):
    sc.probe.send_signal(signal.SIGTERM)
    rc = sc.probe.wait(timeout=10)
    assert rc == 0, "exit %d" % rc
    sc.out.flush()
    ends = [json.loads(l) for l in open(sc.out.name) if '"summary"' in l]
    assert len(ends) >= 3, "%d summaries (a, b at its exit, c)" % len(ends)


def main():
    if os.geteuid() != 0:
        print("0 passed, 0 failed, 1 skipped (needs root)")
        return 0
    for tool in ("prometheus", "promtool"):
        if not shutil.which(tool):
            print("FAIL %s not installed: run make deps" % tool)
            print("0 passed, 1 failed, 0 skipped")
            return 1
    check("rules_check", t_rules_check)
    check("rules_unit_tests", t_rules_unit_tests)
    check("dashboard_current", t_dashboard_current)
    check("dashboard_panels", t_dashboard_panels)
    check("listen_errors", t_listen_errors)
    sc = Scenario()
    try:
        started = False
        try:
            sc.start()
            started = True
        except Exception as e:
            check("scenario_start", lambda: (_ for _ in ()).throw(AssertionError(repr(e))))
        if started:
            time.sleep(3)
            check("exposition", lambda: t_exposition(sc))
            check("discovery", lambda: t_discovery(sc))
            check("findings_in_metrics", lambda: t_findings_in_metrics(sc))
            check("load_1000_scrapes", lambda: t_load(sc))
            check("malformed_requests", lambda: t_malformed(sc))
            left = RUN_S - (time.time() - sc.start_ts)
            if left > 0:
                time.sleep(left)
            check("task_rates", lambda: t_task_rates(sc))
            check("target_exits", lambda: t_target_exits(sc))
            time.sleep(2)
            check("dashboard_queries", lambda: t_dashboard_queries(sc))
            check("rule_queries", lambda: t_rule_queries(sc))
            check("alerts_fire", lambda: t_alerts_fire(sc))
            check("shutdown", lambda: t_shutdown(sc))
    finally:
        sc.stop()
    passed = results.count(True)
    failed = results.count(False)
    print("%d passed, %d failed, 0 skipped" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
