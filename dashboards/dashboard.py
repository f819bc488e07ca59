#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes asyncprobe.json, the Grafana dashboard for asyncprobe's exporter.

    python3 dashboards/dashboard.py > dashboards/asyncprobe.json

Every panel has a title, a unit and a description; rates use
$__rate_interval; the datasource, job, instance and pid are variables.
The tests evaluate each expression against a real Prometheus.
"""
import json

SEL = 'job=~"$job",instance=~"$instance",pid=~"$pid"'
DS = {"type": "prometheus", "uid": "${datasource}"}


def target(expr, legend, ref, fmt=None):
    t = {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref}
    if fmt:
        t["format"] = fmt
    return t


class Layout:
    def __init__(self):
        self.y = 0
        self.x = 0
        self.next_id = 1
        self.panels = []

    def row(self, title):
        if self.x:
            self.y += 8
            self.x = 0
        self.panels.append({"type": "row", "title": title, "id": self.next_id,
                            "collapsed": False,
                            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}})
        self.next_id += 1
        self.y += 1

    def panel(self, kind, title, description, unit, targets, w=12, extra=None):
        if self.x + w > 24:
            self.x = 0
            self.y += 8
        p = {
            "type": kind,
            "id": self.next_id,
            "title": title,
            "description": description,
            "datasource": DS,
            "gridPos": {"h": 8, "w": w, "x": self.x, "y": self.y},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {"legend": {"displayMode": "table",
                                   "placement": "bottom",
                                   "calcs": ["mean", "max"]},
                        "tooltip": {"mode": "multi", "sort": "desc"}},
            "targets": targets,
        }
        if extra:
            p.update(extra)
        self.panels.append(p)
        self.next_id += 1
        self.x += w


def variable(name, label, query):
    return {
        "name": name, "label": label, "type": "query", "datasource": DS,
        "query": {"query": query, "refId": name},
        "definition": query, "refresh": 2, "multi": True, "includeAll": True,
        "allValue": ".*", "current": {"text": "All", "value": "$__all"},
        "sort": 1,
    }


def dashboard():
    L = Layout()
    R = "$__rate_interval"

    L.row("Event loops")
    L.panel("timeseries", "Loop utilization",
            "Share of each event loop thread's time spent running callbacks "
            "rather than waiting in its selector. Near 100% the loop cannot "
            "keep up: every request waits.",
            "percentunit",
            [target(f'sum by (instance, pid, loop) (rate(asyncprobe_event_loop_time_seconds_total{{{SEL},state="active"}}[{R}])) '
                    f'/ sum by (instance, pid, loop) (rate(asyncprobe_event_loop_time_seconds_total{{{SEL}}}[{R}]))',
                    "{{instance}} pid {{pid}} loop {{loop}}", "A")],
            extra={"fieldConfig": {"defaults": {"unit": "percentunit", "min": 0,
                                                "max": 1}, "overrides": []}})
    L.panel("timeseries", "Loop lag quantiles",
            "Busy time of loop iterations (the delay a ready callback can "
            "see), 50th and 99th percentile, from the lag histogram.",
            "s",
            [target(f'histogram_quantile(0.99, sum by (le, instance, pid) (rate(asyncprobe_event_loop_lag_seconds_bucket{{{SEL}}}[{R}])))',
                    "p99 {{instance}} pid {{pid}}", "A"),
             target(f'histogram_quantile(0.5, sum by (le, instance, pid) (rate(asyncprobe_event_loop_lag_seconds_bucket{{{SEL}}}[{R}])))',
                    "p50 {{instance}} pid {{pid}}", "B")])
    L.panel("heatmap", "Loop lag heatmap",
            "How many loop iterations took how long, over time (buckets of "
            "the lag histogram).",
            "s",
            [target(f'sum by (le) (increase(asyncprobe_event_loop_lag_seconds_bucket{{{SEL}}}[{R}]))',
                    "{{le}}", "A", fmt="heatmap")],
            extra={"options": {"calculate": False,
                               "yAxis": {"unit": "s"},
                               "cellGap": 1,
                               "color": {"scheme": "Oranges", "mode": "scheme"}}})
    L.panel("timeseries", "Iteration running now",
            "How long each loop's current iteration has run; 0 while it "
            "waits in its selector. A line that keeps climbing is a hung "
            "loop (see the AsyncprobeEventLoopStalled alert).",
            "s",
            [target(f'max by (instance, pid, loop) (asyncprobe_event_loop_current_iteration_seconds{{{SEL}}})',
                    "{{instance}} pid {{pid}} loop {{loop}}", "A")])

    L.row("Stalls and blocking syscalls")
    L.panel("timeseries", "Stalls by call site",
            "Loop iterations over the stall threshold per second, by the "
            "call site (file:function) that took most of their time.",
            "ops",
            [target(f'sum by (call_site) (rate(asyncprobe_event_loop_stalls_total{{{SEL}}}[{R}]))',
                    "{{call_site}}", "A")])
    L.panel("timeseries", "Time blocked by syscall",
            "Share of the loop threads' time spent blocked in each syscall "
            "(calls over the syscall threshold).",
            "percentunit",
            [target(f'sum by (syscall) (rate(asyncprobe_blocking_syscall_seconds_total{{{SEL}}}[{R}]))',
                    "{{syscall}}", "A")])
    L.panel("table", "Blocking calls by call site",
            "Blocking syscalls on loop threads in the selected range, by "
            "syscall and Python call site, with the time they took.",
            "s",
            [target(f'sum by (syscall, call_site) (increase(asyncprobe_blocking_syscall_seconds_total{{{SEL}}}[$__range]))',
                    "", "A", fmt="table"),
             target(f'sum by (syscall, call_site) (increase(asyncprobe_blocking_syscalls_total{{{SEL}}}[$__range]))',
                    "", "B", fmt="table")],
            extra={"options": {"showHeader": True,
                               "sortBy": [{"displayName": "Value #A",
                                           "desc": True}]},
                   "transformations": [{"id": "merge", "options": {}},
                                       {"id": "organize", "options": {
                                           "excludeByName": {"Time": True},
                                           "renameByName": {
                                               "Value #A": "seconds",
                                               "Value #B": "calls"}}}]})
    L.panel("timeseries", "Blocking syscall duration p99",
            "99th percentile duration of the syscalls that blocked a loop "
            "thread, by syscall.",
            "s",
            [target(f'histogram_quantile(0.99, sum by (le, syscall) (rate(asyncprobe_blocking_syscall_duration_seconds_bucket{{{SEL}}}[{R}])))',
                    "{{syscall}}", "A")])

    L.row("Tasks")
    L.panel("timeseries", "Tasks created and finished",
            "asyncio tasks created and finished per second. Thousands per "
            "second is churn (AsyncprobeTaskChurn).",
            "ops",
            [target(f'sum by (instance, pid) (rate(asyncprobe_tasks_created_total{{{SEL}}}[{R}]))',
                    "created {{instance}} pid {{pid}}", "A"),
             target(f'sum by (instance, pid) (rate(asyncprobe_tasks_finished_total{{{SEL}}}[{R}]))',
                    "finished {{instance}} pid {{pid}}", "B")])
    L.panel("timeseries", "Tasks alive",
            "Pending asyncio tasks. Steady growth is a leak "
            "(AsyncprobeTaskLeak); `asyncprobe tasks -p PID` shows what "
            "they wait for.",
            "short",
            [target(f'sum by (instance, pid) (asyncprobe_tasks_alive{{{SEL}}})',
                    "{{instance}} pid {{pid}}", "A")])

    L.row("asyncio hygiene")
    L.panel("timeseries", "Hygiene findings by kind",
            "asyncio anti-patterns found, by kind: descriptors that keep "
            "growing (fd_growth), cancellation ignored, coroutines never "
            "awaited, tasks destroyed pending, exceptions never retrieved, "
            "tasks hung in one await (long_await). asyncprobe's findings "
            "say where.",
            "short",
            [target(f'sum by (kind) (increase(asyncprobe_hygiene_findings_total{{{SEL}}}[{R}]))',
                    "{{kind}}", "A")])
    L.panel("timeseries", "Open descriptors by kind",
            "The target's open file descriptors by kind (tcp, unix, pipe, "
            "file...): steady growth of one kind is a leak of connections "
            "or files never closed (fd_growth).",
            "short",
            [target(f'sum by (instance, pid, kind) (asyncprobe_open_fds{{{SEL}}})',
                    "{{kind}} {{instance}} pid {{pid}}", "A")])

    L.row("Garbage collector and GIL")
    L.panel("timeseries", "GC pause p99 by generation",
            "99th percentile garbage collection pause on loop threads, by "
            "generation (interpreters with the gc USDT probes, such as "
            "Debian's).",
            "s",
            [target(f'histogram_quantile(0.99, sum by (le, generation) (rate(asyncprobe_gc_pause_seconds_bucket{{{SEL}}}[{R}])))',
                    "generation {{generation}}", "A")])
    L.panel("timeseries", "Time in GC and waiting for the GIL",
            "Share of loop threads' time spent in garbage collection pauses "
            "and waiting for the GIL (other threads hold it).",
            "percentunit",
            [target(f'sum by (instance, pid) (rate(asyncprobe_gc_pause_seconds_sum{{{SEL}}}[{R}]))',
                    "GC {{instance}} pid {{pid}}", "A"),
             target(f'sum by (instance, pid) (rate(asyncprobe_gil_wait_seconds_total{{{SEL}}}[{R}]))',
                    "GIL wait {{instance}} pid {{pid}}", "B")])

    L.row("asyncprobe")
    L.panel("timeseries", "Watched processes",
            "Processes each exporter watches, and those it could not attach "
            "to.",
            "short",
            [target('sum by (instance, state) (asyncprobe_targets{job=~"$job",instance=~"$instance"})',
                    "{{instance}} {{state}}", "A")], w=8)
    L.panel("timeseries", "Events lost",
            "BPF events dropped because the ring buffer was full; findings "
            "may be missing when this is not 0.",
            "short",
            [target(f'sum by (instance, pid) (increase(asyncprobe_events_lost_total{{{SEL}}}[{R}]))',
                    "{{instance}} pid {{pid}}", "A")], w=8)
    L.panel("timeseries", "Scrape duration",
            "Time the exporter took to gather the metrics of a scrape.",
            "s",
            [target('max by (instance) (asyncprobe_scrape_duration_seconds{job=~"$job",instance=~"$instance"})',
                    "{{instance}}", "A")], w=8)

    return {
        "uid": "asyncprobe",
        "title": "asyncprobe: asyncio event loops",
        "description": "Event loop utilization, lag, stalls, blocking "
                       "syscalls, tasks, GC and GIL of asyncio services, "
                       "from asyncprobe's Prometheus exporter.",
        "tags": ["asyncio", "python", "asyncprobe"],
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "time": {"from": "now-1h", "to": "now"},
        "timezone": "",
        "version": 1,
        "templating": {"list": [
            {"name": "datasource", "label": "Data source",
             "type": "datasource", "query": "prometheus",
             "current": {"text": "default", "value": "default"}},
            variable("job", "job", "label_values(asyncprobe_build_info, job)"),
            variable("instance", "instance",
                     'label_values(asyncprobe_build_info{job=~"$job"}, instance)'),
            variable("pid", "pid",
                     'label_values(asyncprobe_target_info{job=~"$job",instance=~"$instance"}, pid)'),
        ]},
        "annotations": {"list": []},
        "panels": L.panels,
    }


if __name__ == "__main__":
    print(json.dumps(dashboard(), indent=2))
