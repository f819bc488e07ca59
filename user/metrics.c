// SPDX-License-Identifier: MIT
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "clock.h"
#include "metrics.h"
#include "output.h"
#include "selhook.h"

static const uint64_t lag_bounds[AP_LAG_NBOUNDS] = AP_LAG_BOUNDS;
static const uint64_t gc_bounds[AP_GC_NBOUNDS] = AP_GC_BOUNDS;
static const double block_bounds[AP_BLOCK_NBOUNDS] = AP_BLOCK_BOUNDS;

/* A family's header is written before its first sample: families without
 * samples are left out. */
struct family {
	const char *name, *type, *help;
	bool started;
};

struct render {
	FILE *out;
	struct family *fam;
	const struct ap_target_metrics *t;
	bool sum; /* the callback writes the sum, not the count */
};

const char *metrics__escape(const char *s, char *buf, size_t len)
{
	size_t o = 0;

	if (!len)
		return "";
	for (; s && *s && o + 3 < len; s++) {
		char c = *s;

		if (c == '\\' || c == '"' || c == '\n') {
			buf[o++] = '\\';
			c = c == '\n' ? 'n' : c;
		}
		buf[o++] = c;
	}
	buf[o] = '\0';
	return buf;
}

void metrics__call_site(const struct py_frame_info *frames, int n, char *buf,
			size_t len)
{
	int pick = output__app_frame(frames, n);

	if (pick < 0) {
		snprintf(buf, len, "unknown");
		return;
	}
	snprintf(buf, len, "%s:%s",
		 frames[pick].file[0] ? frames[pick].file : "?",
		 frames[pick].function[0] ? frames[pick].function : "?");
}

/* The shortest text that reads back as @v (integers without exponent). */
static const char *fmt(double v, char *buf, size_t len)
{
	if (v == (double)(int64_t)v && v < 9007199254740992.0 &&
	    v > -9007199254740992.0) {
		snprintf(buf, len, "%lld", (long long)v);
		return buf;
	}
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, len, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	return buf;
}

static void num(FILE *out, double v)
{
	char buf[40];

	fputs(fmt(v, buf, sizeof(buf)), out);
}

static void head(struct render *r)
{
	if (r->fam->started)
		return;
	r->fam->started = true;
	fprintf(r->out, "# HELP %s %s\n# TYPE %s %s\n", r->fam->name,
		r->fam->help, r->fam->name, r->fam->type);
}

/* One sample: @labels is the inside of {...}, already escaped; NULL for
 * none. */
static void sample(struct render *r, const char *suffix, const char *labels,
		   double v)
{
	head(r);
	fprintf(r->out, labels ? "%s%s{%s} " : "%s%s ", r->fam->name, suffix,
		labels);
	num(r->out, v);
	fputc('\n', r->out);
}

/* A histogram's buckets (made cumulative here), sum and count. */
static void histogram(struct render *r, const char *labels,
		      const uint64_t *buckets, const double *bounds_s,
		      int nbounds, double sum)
{
	char lb[1024];
	uint64_t cum = 0;

	for (int i = 0; i <= nbounds; i++) {
		char le[32];

		cum += buckets[i];
		if (i < nbounds)
			fmt(bounds_s[i], le, sizeof(le));
		else
			snprintf(le, sizeof(le), "+Inf");
		snprintf(lb, sizeof(lb), "%s,le=\"%s\"", labels, le);
		sample(r, "_bucket", lb, (double)cum);
	}
	sample(r, "_sum", labels, sum);
	sample(r, "_count", labels, (double)cum);
}

static void site_row(void *ctx, const char *key, const char *site,
		     uint64_t count, double sum)
{
	struct render *r = ctx;
	char lb[1024], esc[2 * SITETAB_SITE_MAX];

	metrics__escape(site, esc, sizeof(esc));
	if (key[0])
		snprintf(lb, sizeof(lb),
			 "pid=\"%d\",syscall=\"%s\",call_site=\"%s\"",
			 r->t->pid, key, esc);
	else
		snprintf(lb, sizeof(lb), "pid=\"%d\",call_site=\"%s\"",
			 r->t->pid, esc);
	sample(r, "", lb, r->sum ? sum : (double)count);
}

static void loop_families(struct render *r, struct ap_target_metrics *ts, int n)
{
	struct family fams[] = {
		{ "asyncprobe_event_loop_lag_seconds", "histogram",
		  "Busy time of each event loop iteration (callbacks run "
		  "between two selector waits). Where the selector hook is a "
		  "syscall tracepoint, attached " SELHOOK_WINDOWS_TEXT
		  ", an iteration shorter than a stall timed then counts "
		  "for " SELHOOK_WEIGHT_TEXT "." },
		{ "asyncprobe_event_loop_time_seconds_total", "counter",
		  "Time each event loop thread spent running callbacks "
		  "(active) and waiting in its selector (idle)." },
		{ "asyncprobe_event_loop_current_iteration_seconds", "gauge",
		  "How long the iteration running now has lasted; 0 while "
		  "the loop waits in its selector. A hung loop grows here." },
		{ "asyncprobe_gil_wait_seconds_total", "counter",
		  "Time event loop threads waited for the GIL." },
		{ "asyncprobe_gil_waits_total", "counter",
		  "Waits for the GIL by event loop threads." },
		{ "asyncprobe_gc_pause_seconds", "histogram",
		  "Garbage collection pauses on event loop threads, by "
		  "generation (interpreters with the gc USDT probes)." },
	};
	double lag_s[AP_LAG_NBOUNDS], gc_s[AP_GC_NBOUNDS];
	char lb[256], lg[320];

	for (int i = 0; i < AP_LAG_NBOUNDS; i++)
		lag_s[i] = lag_bounds[i] / 1e9;
	for (int i = 0; i < AP_GC_NBOUNDS; i++)
		gc_s[i] = gc_bounds[i] / 1e9;
	for (size_t f = 0; f < sizeof(fams) / sizeof(fams[0]); f++) {
		r->fam = &fams[f];
		for (int t = 0; t < n; t++) {
			r->t = &ts[t];
			for (int i = 0; i < ts[t].nloops; i++) {
				const struct ap_loop_metrics *l =
					&ts[t].loops[i];

				snprintf(lb, sizeof(lb),
					 "pid=\"%d\",loop=\"%u\"", ts[t].pid,
					 l->tid);
				switch (f) {
				case 0:
					histogram(r, lb, l->lag, lag_s,
						  AP_LAG_NBOUNDS,
						  l->lag_sum_ns / 1e9);
					break;
				case 1:
					snprintf(lg, sizeof(lg),
						 "%s,state=\"active\"", lb);
					sample(r, "", lg, l->busy_ns / 1e9);
					snprintf(lg, sizeof(lg),
						 "%s,state=\"idle\"", lb);
					sample(r, "", lg, l->idle_ns / 1e9);
					break;
				case 2:
					sample(r, "", lb, l->current_ns / 1e9);
					break;
				case 3:
					sample(r, "", lb, l->gil_wait_ns / 1e9);
					break;
				case 4:
					sample(r, "", lb, (double)l->gil_waits);
					break;
				case 5:
					for (int g = 0; l->gc_timed && g < 3;
					     g++) {
						snprintf(lg, sizeof(lg),
							 "%s,generation=\"%d\"",
							 lb, g);
						histogram(r, lg, l->gc_hist[g],
							  gc_s, AP_GC_NBOUNDS,
							  l->gc_ns[g] / 1e9);
					}
					break;
				}
			}
		}
	}
	r->fam = NULL;
}

static void site_families(struct render *r, struct ap_target_metrics *ts, int n,
			  int top)
{
	struct family stalls = {
		"asyncprobe_event_loop_stalls_total", "counter",
		"Event loop iterations longer than the stall threshold, by "
		"the call site (file:function) that took most of the time."
	};
	struct family blocks = {
		"asyncprobe_blocking_syscalls_total", "counter",
		"Syscalls that blocked an event loop thread longer than the "
		"syscall threshold, by syscall and Python call site."
	};
	struct family secs = {
		"asyncprobe_blocking_syscall_seconds_total", "counter",
		"Time event loop threads spent blocked in those syscalls."
	};
	struct family hist = {
		"asyncprobe_blocking_syscall_duration_seconds", "histogram",
		"Duration of the syscalls that blocked an event loop thread "
		"longer than the syscall threshold."
	};
	char lb[256];

	for (int t = 0; t < n; t++) {
		sitetab__promote(ts[t].stall_sites, top);
		sitetab__promote(ts[t].block_sites, top);
	}
	r->sum = false;
	r->fam = &stalls;
	for (int t = 0; t < n; t++) {
		r->t = &ts[t];
		sitetab__foreach(ts[t].stall_sites, site_row, r);
	}
	r->fam = &blocks;
	for (int t = 0; t < n; t++) {
		r->t = &ts[t];
		sitetab__foreach(ts[t].block_sites, site_row, r);
	}
	r->fam = &secs;
	r->sum = true;
	for (int t = 0; t < n; t++) {
		r->t = &ts[t];
		sitetab__foreach(ts[t].block_sites, site_row, r);
	}
	r->sum = false;
	r->fam = &hist;
	for (int t = 0; t < n; t++) {
		for (int i = 0; i < ts[t].nblock_hist; i++) {
			const struct ap_syscall_hist *h = &ts[t].block_hist[i];

			snprintf(lb, sizeof(lb), "pid=\"%d\",syscall=\"%s\"",
				 ts[t].pid, h->name);
			histogram(r, lb, h->buckets, block_bounds,
				  AP_BLOCK_NBOUNDS, h->sum);
		}
	}
	r->fam = NULL; /* the families are this function's */
}

static void target_families(struct render *r, struct ap_target_metrics *ts,
			    int n)
{
	struct family fams[] = {
		{ "asyncprobe_tasks_created_total", "counter",
		  "asyncio tasks created since asyncprobe attached." },
		{ "asyncprobe_tasks_finished_total", "counter",
		  "asyncio tasks that finished since asyncprobe attached." },
		{ "asyncprobe_tasks_alive", "gauge",
		  "asyncio tasks pending at the last walk of the task "
		  "registry." },
		{ "asyncprobe_events_lost_total", "counter",
		  "BPF events dropped because the ring buffer was full." },
		{ "asyncprobe_target_info", "gauge",
		  "A watched Python process: its PID in its own namespace, "
		  "Python version and process name." },
		{ "asyncprobe_hygiene_findings_total", "counter",
		  "asyncio anti-patterns found, by kind: fd_growth "
		  "(descriptors of one kind that keep growing), "
		  "cancel_ignored (a task still running "
		  "--cancel-threshold after cancel()), never_awaited, "
		  "task_destroyed_pending, exception_never_retrieved, "
		  "long_await (a task suspended in one await for "
		  "--await-threshold; only with that option)." },
		{ "asyncprobe_open_fds", "gauge",
		  "The target's open file descriptors by kind, counted "
		  "every 2 seconds." },
	};
	char lb[512], e1[64], e2[96];

	for (size_t f = 0; f < sizeof(fams) / sizeof(fams[0]); f++) {
		r->fam = &fams[f];
		for (int t = 0; t < n; t++) {
			const struct ap_target_metrics *m = &ts[t];

			snprintf(lb, sizeof(lb), "pid=\"%d\"", m->pid);
			if (f <= 2 && !m->tasks_known)
				continue;
			switch (f) {
			case 0:
				sample(r, "", lb, (double)m->tasks_created);
				break;
			case 1:
				sample(r, "", lb, (double)m->tasks_finished);
				break;
			case 2:
				sample(r, "", lb, (double)m->tasks_alive);
				break;
			case 3:
				sample(r, "", lb, (double)m->events_lost);
				break;
			case 4:
				snprintf(lb, sizeof(lb),
					 "pid=\"%d\",ns_pid=\"%d\",python=\"%"
					 "s\","
					 "comm=\"%s\"",
					 m->pid, m->ns_pid,
					 metrics__escape(m->python, e1,
							 sizeof(e1)),
					 metrics__escape(m->comm, e2,
							 sizeof(e2)));
				sample(r, "", lb, 1);
				break;
			case 5:
				/* a kind not looked for has no series,
				 * rather than a 0 that reads "none" */
				for (int k = 0; k < m->nhygiene; k++) {
					snprintf(lb, sizeof(lb),
						 "pid=\"%d\",kind=\"%s\"",
						 m->pid, ap_hygiene_names[k]);
					sample(r, "", lb,
					       (double)m->hygiene[k]);
				}
				break;
			case 6:
				for (int k = 0; k < AP_FD_KINDS; k++) {
					if (m->fds[k] < 0)
						continue;
					snprintf(lb, sizeof(lb),
						 "pid=\"%d\",kind=\"%s\"",
						 m->pid, ap_fd_kind_names[k]);
					sample(r, "", lb, (double)m->fds[k]);
				}
				break;
			}
		}
	}
	r->fam = NULL;
}

static void self_families(struct render *r, const struct ap_self_metrics *s)
{
	struct family targets = { "asyncprobe_targets", "gauge",
				  "Processes asyncprobe watches (active) or "
				  "could not attach to (failed)." };
	struct family exited = { "asyncprobe_targets_exited_total", "counter",
				 "Watched processes that exited." };
	struct family build = { "asyncprobe_build_info", "gauge",
				"asyncprobe's version and the libbpf it "
				"runs with." };
	struct family start = { "asyncprobe_start_time_seconds", "gauge",
				"When asyncprobe started, in seconds since "
				"the epoch." };
	struct family scrapes = { "asyncprobe_scrapes_total", "counter",
				  "Scrapes of /metrics served, this one "
				  "included." };
	struct family dur = { "asyncprobe_scrape_duration_seconds", "gauge",
			      "Time taken to gather the metrics of this "
			      "scrape." };
	char lb[256], e1[64], e2[64];

	r->fam = &targets;
	sample(r, "", "state=\"active\"", s->targets_active);
	sample(r, "", "state=\"failed\"", s->targets_failed);
	r->fam = &exited;
	sample(r, "", NULL, (double)s->targets_exited);
	r->fam = &build;
	snprintf(lb, sizeof(lb), "version=\"%s\",libbpf_version=\"%s\"",
		 metrics__escape(s->version, e1, sizeof(e1)),
		 metrics__escape(s->libbpf, e2, sizeof(e2)));
	sample(r, "", lb, 1);
	r->fam = &start;
	sample(r, "", NULL, s->process_start);
	r->fam = &scrapes;
	sample(r, "", NULL, (double)s->scrapes);
	/* last, so that it covers everything above */
	r->fam = &dur;
	sample(r, "", NULL, clock__mono() - s->start_s);
	r->fam = NULL;
}

int metrics__render(FILE *out, struct ap_target_metrics *targets, int n,
		    const struct ap_self_metrics *self, int top)
{
	struct render r = { .out = out };

	loop_families(&r, targets, n);
	site_families(&r, targets, n, top);
	target_families(&r, targets, n);
	self_families(&r, self);
	return ferror(out) ? -1 : 0;
}
