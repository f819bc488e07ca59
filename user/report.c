// SPDX-License-Identifier: MIT
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "output.h"
#include "pprof.h"
#include "record.h"
#include "report.h"
#include "version.h"

#define TOP 10		    /* culprits listed per kind */
#define STACK_MAX 128	    /* frames of a stack used, innermost cut */
#define MAX_PENDING 256	    /* findings still going on, per thread */
#define SAME_START_MS 100.0 /* an ending and its report in progress */

/* A stall or a blocking syscall, counted once. */
struct finding {
	json_t *ev;
	bool stall;
	double ms;
};

struct report {
	const struct ap_options *o;
	json_t *header;
	json_t **events;
	size_t nevents, cap;
	struct finding *found;
	size_t nfound, capfound;
	/* in-progress reports not (yet) followed by their ending */
	json_t *pending[MAX_PENDING];
	int npending;
	int npids;
	long pids[64];
};

static double num(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	return json_is_number(v) ? json_number_value(v) : 0;
}

/* Seconds as nanoseconds; a duration or date of a damaged or hostile
 * record (negative, NaN, past the year 2262) reads as 0. */
static int64_t ns_of(double s)
{
	return s > 0 && s < 9.2e9 ? (int64_t)(s * 1e9) : 0;
}

/* An integer field; out of range (or NaN) reads as 0, never a wild cast. */
static long inum(const json_t *o, const char *key)
{
	double v = num(o, key);

	return v > -9.2e18 && v < 9.2e18 ? (long)v : 0;
}

static const char *str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static bool is_kind(const json_t *ev, const char *kind)
{
	return !strcmp(str(ev, "event"), kind);
}

static int push(void **arr, size_t *n, size_t *cap, size_t size)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 256;
		void *p = realloc(*arr, c * size);

		if (!p)
			return -ENOMEM;
		*arr = p;
		*cap = c;
	}
	return 0;
}

static int found_add(struct report *r, json_t *ev)
{
	if (push((void **)&r->found, &r->nfound, &r->capfound,
		 sizeof(*r->found)))
		return -ENOMEM;
	r->found[r->nfound++] = (struct finding){
		.ev = ev,
		.stall = is_kind(ev, "stall"),
		.ms = num(ev, "duration_ms"),
	};
	return 0;
}

static double start_ms(const json_t *ev)
{
	return num(ev, "ts") * 1e3 - num(ev, "duration_ms");
}

/* The same thread, kind and start: @b is @a reported again. */
static bool same_episode(const json_t *a, const json_t *b)
{
	return inum(a, "pid") == inum(b, "pid") &&
	       inum(a, "tid") == inum(b, "tid") &&
	       !strcmp(str(a, "event"), str(b, "event")) &&
	       fabs(start_ms(a) - start_ms(b)) < SAME_START_MS;
}

/*
 * A finding still going on is reported while it lasts and again when it
 * ends: count it once, as its latest report.  Those that never ended (the
 * run stopped first) count as their last report in progress.
 */
static int finding_take(struct report *r, json_t *ev)
{
	bool going = json_is_true(json_object_get(ev, "in_progress"));
	int i;

	for (i = 0; i < r->npending; i++)
		if (same_episode(r->pending[i], ev))
			break;
	if (i < r->npending) {
		if (going) {
			r->pending[i] = ev;
			return 0;
		}
		r->pending[i] = r->pending[--r->npending];
	}
	if (!going)
		return found_add(r, ev);
	if (r->npending < MAX_PENDING) {
		r->pending[r->npending++] = ev;
		return 0;
	}
	return found_add(r, ev);
}

static int report_load(struct report *r, char *err, size_t errlen)
{
	struct record_reader *rd = record__open(r->o->record, err, errlen);
	json_t *ev;
	int rc;

	if (!rd)
		return -1;
	r->header = json_deep_copy(record__header(rd));
	while ((rc = record__next(rd, &ev, err, errlen)) == 1) {
		long pid = inum(ev, "pid");
		bool known = false;

		if (push((void **)&r->events, &r->nevents, &r->cap,
			 sizeof(*r->events))) {
			json_decref(ev);
			rc = -1;
			snprintf(err, errlen, "out of memory");
			break;
		}
		r->events[r->nevents++] = ev;
		for (int i = 0; i < r->npids; i++)
			known |= r->pids[i] == pid;
		if (!known && pid > 0 && r->npids < 64)
			r->pids[r->npids++] = pid;
		if ((is_kind(ev, "stall") || is_kind(ev, "blocking_syscall")) &&
		    finding_take(r, ev)) {
			rc = -1;
			snprintf(err, errlen, "out of memory");
			break;
		}
	}
	record__free(rd);
	if (rc < 0 && r->o->partial && r->nevents) {
		fprintf(stderr,
			"asyncprobe: warning: %s; reporting the %zu "
			"events before that\n",
			err, r->nevents);
		rc = 0;
	} else if (rc < 0 && r->nevents) {
		size_t len = strlen(err);

		snprintf(err + len, errlen - len,
			 "; `asyncprobe report --partial` reports the %zu "
			 "events before that",
			 r->nevents);
	}
	for (int i = 0; rc == 0 && i < r->npending; i++)
		if (found_add(r, r->pending[i]))
			rc = -1;
	return rc < 0 ? -1 : 0;
}

/* --- stacks -------------------------------------------------------- */

/* The frame to blame, innermost first: the application's own code when
 * the innermost is library code. */
static const json_t *blame(const json_t *ev)
{
	const json_t *st = json_object_get(ev, "stack");
	size_t n = json_array_size(st);

	for (size_t i = 0; i < n; i++) {
		const json_t *fr = json_array_get(st, i);

		if (!output__is_library(str(fr, "file")))
			return fr;
	}
	return n ? json_array_get(st, 0) : NULL;
}

static void frame_label(const json_t *fr, char *buf, size_t len)
{
	if (!fr) {
		snprintf(buf, len, "(no Python stack)");
		return;
	}
	snprintf(buf, len, "%s (%s:%ld)", str(fr, "function"),
		 output__short_path(str(fr, "file")), inum(fr, "line"));
}

/* --- text ---------------------------------------------------------- */

#define UNAWAITED_PLACES 256

/* A place coroutines were dropped unawaited at, and the most times seen. */
struct unawaited_place {
	long pid, count;
	const char *coroutine;
	const json_t *at; /* the innermost frame */
};

static bool same_frame(const json_t *a, const json_t *b)
{
	if (!a || !b)
		return a == b;
	return !strcmp(str(a, "function"), str(b, "function")) &&
	       !strcmp(str(a, "file"), str(b, "file")) &&
	       inum(a, "line") == inum(b, "line");
}

/* The never_awaited findings by place (each place is reported at its 1st,
 * 10th, 100th... coroutine): one line each, with the last count. */
static int text_unawaited(FILE *out, const struct report *r, int n)
{
	static struct unawaited_place places[UNAWAITED_PLACES];
	int nplaces = 0, more = 0;
	char where[512];

	for (size_t i = 0; i < r->nevents; i++) {
		const json_t *ev = r->events[i];
		const json_t *at =
			json_array_get(json_object_get(ev, "stack"), 0);
		const char *coro = str(ev, "coroutine");
		struct unawaited_place *p = NULL;

		if (!is_kind(ev, "never_awaited"))
			continue;
		for (int k = 0; k < nplaces && !p; k++)
			if (places[k].pid == inum(ev, "pid") &&
			    !strcmp(places[k].coroutine, coro) &&
			    same_frame(places[k].at, at))
				p = &places[k];
		if (!p && nplaces == UNAWAITED_PLACES) {
			more++;
			continue;
		}
		if (!p) {
			p = &places[nplaces++];
			*p = (struct unawaited_place){ .pid = inum(ev, "pid"),
						       .coroutine = coro,
						       .at = at };
		}
		if (inum(ev, "count") > p->count)
			p->count = inum(ev, "count");
	}
	for (int k = 0; k < nplaces; k++) {
		if (!n++)
			fputc('\n', out);
		frame_label(places[k].at, where, sizeof(where));
		fprintf(out,
			"  PID %ld: coroutine %s never awaited (%ld seen), "
			"dropped at %s\n",
			places[k].pid,
			*places[k].coroutine ? places[k].coroutine : "?",
			places[k].count, where);
	}
	if (more)
		fprintf(out, "  ... and %d more such findings\n", more);
	return n;
}

/* Did a run of the recording look for long awaits (--await-threshold)? */
static bool awaits_watched(const struct report *r)
{
	for (size_t i = 0; i < r->nevents; i++)
		if (is_kind(r->events[i], "summary") &&
		    json_object_get(
			    json_object_get(r->events[i], "hygiene_findings"),
			    "long_await"))
			return true;
	return false;
}

/* The asyncio anti-patterns found: each descriptor growth, each task
 * that ignored its cancellation or hangs in one await (where it is, its
 * own code's frame), each task destroyed pending or exception never
 * retrieved, each place coroutines were dropped unawaited at. */
static void text_hygiene(FILE *out, const struct report *r)
{
	int n = 0;

	fprintf(out, "\nasyncio hygiene: ");
	for (size_t i = 0; i < r->nevents; i++) {
		const json_t *ev = r->events[i];
		const json_t *st = json_object_get(ev, "stack");
		char where[512];
		size_t app = 0;

		if (!is_kind(ev, "fd_growth") &&
		    !is_kind(ev, "cancel_ignored") &&
		    !is_kind(ev, "long_await") &&
		    !is_kind(ev, "task_destroyed_pending") &&
		    !is_kind(ev, "exception_never_retrieved"))
			continue;
		if (!n++)
			fputc('\n', out);
		if (!is_kind(ev, "fd_growth") &&
		    !is_kind(ev, "cancel_ignored") &&
		    !is_kind(ev, "long_await")) {
			bool pending = is_kind(ev, "task_destroyed_pending");

			fprintf(out, "  PID %ld: ", inum(ev, "pid"));
			if (pending)
				fputs("task", out);
			else
				fprintf(out, "%s of %s",
					*str(ev, "exception")
						? str(ev, "exception")
						: "an exception",
					!strcmp(str(ev, "future"), "Future")
						? "future"
						: "task");
			if (*str(ev, "task"))
				fprintf(out, " %s", str(ev, "task"));
			if (*str(ev, "coroutine"))
				fprintf(out, " (coroutine %s, %s:%ld)",
					str(ev, "coroutine"),
					output__short_path(
						str(ev, "coroutine_file")),
					inum(ev, "coroutine_line"));
			fputs(pending ? " destroyed while pending\n"
				      : " never retrieved\n",
			      out);
			continue;
		}
		if (is_kind(ev, "cancel_ignored") ||
		    is_kind(ev, "long_await")) {
			while (app + 1 < json_array_size(st) &&
			       output__is_library(
				       str(json_array_get(st, app), "file")))
				app++;
			if (json_array_size(st))
				frame_label(json_array_get(st, app), where,
					    sizeof(where));
			else if (*str(ev, "coroutine"))
				snprintf(where, sizeof(where),
					 "coroutine %s (%s:%ld)",
					 str(ev, "coroutine"),
					 output__short_path(
						 str(ev, "coroutine_file")),
					 inum(ev, "coroutine_line"));
			else
				snprintf(where, sizeof(where), "?");
		}
		if (is_kind(ev, "long_await")) {
			fprintf(out,
				"  PID %ld: task %s suspended %.0f s in one "
				"await, at %s",
				inum(ev, "pid"),
				*str(ev, "task") ? str(ev, "task") : "?",
				num(ev, "suspended_s"), where);
			if (*str(ev, "awaits"))
				fprintf(out, " (on a %s)", str(ev, "awaits"));
			fputc('\n', out);
			continue;
		}
		if (is_kind(ev, "cancel_ignored")) {
			fprintf(out,
				"  PID %ld: task %s still ran %.0f s after "
				"cancel(), at %s\n",
				inum(ev, "pid"),
				*str(ev, "task") ? str(ev, "task") : "?",
				num(ev, "pending_s"), where);
			continue;
		}
		fprintf(out,
			"  PID %ld: %s descriptors grew from %ld to %ld "
			"(+%.1f/s), still open\n",
			inum(ev, "pid"), str(ev, "fd_kind"),
			inum(ev, "fds_start"), inum(ev, "fds_end"),
			num(ev, "growth_per_s"));
	}
	n = text_unawaited(out, r, n);
	if (n && !awaits_watched(r))
		fputs("  (long awaits: not watched, see --await-threshold)\n",
		      out);
	if (!n)
		fprintf(out,
			"no descriptor growth, no ignored cancellation, no "
			"coroutine left unawaited, no task destroyed pending, "
			"no exception left unretrieved%s\n",
			awaits_watched(r) ? ", no await left hanging"
					  : " (long awaits: not watched, see "
					    "--await-threshold)");
}

struct culprit {
	char key[640];
	char where[512];
	char what[160]; /* blocking: syscall and fd */
	double ms;
	int n;
	long pid;
};

static int culprit_cmp(const void *a, const void *b)
{
	const struct culprit *x = a, *y = b;

	return x->ms < y->ms ? 1 : x->ms > y->ms ? -1 : 0;
}

/* Sum the findings of one kind by their blamed frame (and syscall). */
static int culprits(const struct report *r, bool stall, struct culprit **out)
{
	struct culprit *c = NULL;
	size_t n = 0, cap = 0;

	for (size_t i = 0; i < r->nfound; i++) {
		const struct finding *f = &r->found[i];
		char where[512], what[160], key[640];
		size_t j;

		if (f->stall != stall)
			continue;
		frame_label(blame(f->ev), where, sizeof(where));
		what[0] = '\0';
		if (!stall) {
			const char *target = str(f->ev, "fd_target");

			snprintf(
				what, sizeof(what), "%s%s%s%s",
				str(f->ev, "syscall"),
				json_is_true(json_object_get(f->ev, "gil_wait"))
					? " (GIL wait)"
					: "",
				target[0] ? " " : "", target);
		}
		snprintf(key, sizeof(key), "%ld|%s|%s", inum(f->ev, "pid"),
			 where, stall ? "" : str(f->ev, "syscall"));
		for (j = 0; j < n; j++)
			if (!strcmp(c[j].key, key))
				break;
		if (j == n) {
			if (push((void **)&c, &n, &cap, sizeof(*c))) {
				free(c);
				return -ENOMEM;
			}
			memset(&c[n], 0, sizeof(c[n]));
			memcpy(c[n].key, key, sizeof(key));
			memcpy(c[n].where, where, sizeof(where));
			memcpy(c[n].what, what, sizeof(what));
			c[n].pid = inum(f->ev, "pid");
			n++;
		}
		c[j].ms += f->ms;
		c[j].n++;
	}
	if (n)
		qsort(c, n, sizeof(*c), culprit_cmp);
	*out = c;
	return (int)n;
}

static void text_culprits(FILE *out, const struct report *r, bool stall)
{
	struct culprit *c = NULL;
	int n = culprits(r, stall, &c);

	fprintf(out, "\n%s\n",
		stall ? "Top stall culprits, by total stalled time:"
		      : "Top blocking call sites, by total blocked time:");
	if (n <= 0)
		fprintf(out, "  none\n");
	for (int i = 0; i < n && i < TOP; i++) {
		fprintf(out, "  %2d. %8.0f ms in %3d %s  ", i + 1, c[i].ms,
			c[i].n, stall ? "stalls" : "calls ");
		if (!stall)
			fprintf(out, "%s  ", c[i].what);
		fprintf(out, "%s", c[i].where);
		if (r->npids > 1)
			fprintf(out, "  [pid %ld]", c[i].pid);
		fputc('\n', out);
	}
	if (n > TOP)
		fprintf(out, "  ... and %d more\n", n - TOP);
	free(c);
}

static void text_loops(FILE *out, const json_t *loops)
{
	const json_t *l;
	size_t i;

	if (!json_array_size(loops))
		fprintf(out, "  no asyncio event loop ran\n");
	json_array_foreach(loops, i, l)
	{
		double busy = num(l, "busy_ms"), all = busy + num(l, "idle_ms");

		fprintf(out,
			"  loop tid %ld: %.0f%% busy (%.0f of %.0f ms), %ld "
			"iterations, longest %.0f ms, %.0f ms waiting for the "
			"GIL, %.0f ms in GC\n",
			inum(l, "tid"), all > 0 ? 100 * busy / all : 0, busy,
			all, inum(l, "iterations"), num(l, "max_iteration_ms"),
			num(l, "gil_wait_ms"), num(l, "gc_ms"));
	}
}

static void text_summary(FILE *out, const json_t *s)
{
	const json_t *loops = json_object_get(s, "loops");
	double secs = num(s, "end_ts") - num(s, "start_ts");

	fprintf(out,
		"\nPID %ld (Python %s): %.1f s watched, %ld stalls, %ld "
		"blocking syscalls",
		inum(s, "pid"), str(s, "python"), secs, inum(s, "stalls"),
		inum(s, "blocking_syscalls"));
	if (inum(s, "events_lost"))
		fprintf(out, ", %ld events LOST", inum(s, "events_lost"));
	fputc('\n', out);
	text_loops(out, loops);
	if (json_object_get(s, "tasks_created"))
		fprintf(out,
			"  tasks: %ld created (peak %.0f/s), %ld finished, %ld "
			"pending at the end (at most %ld)\n",
			inum(s, "tasks_created"),
			num(s, "tasks_peak_rate_per_s"),
			inum(s, "tasks_finished"), inum(s, "tasks_alive"),
			inum(s, "tasks_alive_max"));
}

static void text_report(FILE *out, const struct report *r)
{
	time_t created = (time_t)inum(r->header, "created");
	const json_t *argv = json_object_get(r->header, "argv");
	int churns = 0, leaks = 0;
	double peak = 0;
	char when[64] = "?";
	struct tm tm;

	if (localtime_r(&created, &tm))
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %Z", &tm);
	fprintf(out,
		"asyncprobe incident report: %s\n  recorded %s by "
		"asyncprobe %s:",
		r->o->record, when, str(r->header, "asyncprobe"));
	for (size_t i = 0; i < json_array_size(argv); i++)
		fprintf(out, " %s", json_string_value(json_array_get(argv, i)));
	fprintf(out,
		"\n  thresholds: stall > %g ms, blocking syscall > %g ms\n",
		num(r->header, "stall_threshold_ms"),
		num(r->header, "syscall_threshold_ms"));
	for (size_t i = 0; i < r->nevents; i++) {
		const json_t *ev = r->events[i];

		if (is_kind(ev, "summary")) {
			text_summary(out, ev);
		} else if (is_kind(ev, "task_churn")) {
			churns++;
			if (num(ev, "peak_rate_per_s") > peak)
				peak = num(ev, "peak_rate_per_s");
		} else if (is_kind(ev, "task_leak")) {
			leaks++;
		}
	}
	/* cut short: the loops as their last loop_stats left them */
	for (int p = 0; p < r->npids; p++) {
		const json_t *last = NULL;
		bool summed = false;

		for (size_t i = 0; i < r->nevents; i++) {
			const json_t *ev = r->events[i];

			if (inum(ev, "pid") != r->pids[p])
				continue;
			summed |= is_kind(ev, "summary");
			if (is_kind(ev, "loop_stats"))
				last = ev;
		}
		if (summed)
			continue;
		fprintf(out,
			"\nPID %ld: no summary (the recording was cut short); "
			"its loops after %.1f s:\n",
			r->pids[p],
			last ? num(last, "ts") - num(last, "start_ts") : 0.0);
		if (last)
			text_loops(out, json_object_get(last, "loops"));
		else
			fprintf(out, "  nothing recorded about its loops\n");
	}
	text_culprits(out, r, true);
	text_culprits(out, r, false);
	fprintf(out, "\nTask churn: ");
	if (churns)
		fprintf(out, "%d episode%s, peak %.0f tasks/s\n", churns,
			churns == 1 ? "" : "s", peak);
	else
		fprintf(out, "none over the threshold\n");
	for (size_t i = 0; i < r->nevents; i++) {
		const json_t *ev = r->events[i];
		const json_t *sites = json_object_get(ev, "sites");

		if (!is_kind(ev, "task_leak"))
			continue;
		fprintf(out,
			"Task leak in PID %ld: pending tasks grew from %ld to "
			"%ld",
			inum(ev, "pid"), inum(ev, "tasks_alive_start"),
			inum(ev, "tasks_alive_end"));
		if (json_array_size(sites)) {
			char where[512];

			frame_label(json_array_get(sites, 0), where,
				    sizeof(where));
			fprintf(out, ", most in %s", where);
		}
		fputc('\n', out);
	}
	if (!leaks)
		fprintf(out, "Task leaks: none seen\n");
	text_hygiene(out, r);
}

/* --- json ---------------------------------------------------------- */

static void json_report(FILE *out, const struct report *r)
{
	for (size_t i = 0; i < r->nevents; i++) {
		char *s = json_dumps(r->events[i],
				     JSON_COMPACT | JSON_PRESERVE_ORDER |
					     JSON_REAL_PRECISION(12));

		if (s)
			fprintf(out, "%s\n", s);
		free(s);
	}
}

/* --- stacks weighted by time: folded, speedscope -------------------- */

/* Calls @cb for each finding with its frames outermost first, names
 * cleaned of the folded format's separators. */
#define WSTACKS_MAX 9 /* of a finding: its sampled stacks and the rest */

struct wstack {
	const char *root; /* "stall" or "blocking" */
	long pid;
	char syscall[64];
	int n;
	const json_t *frames[STACK_MAX];
	double ms;
};

static void wstack_fill(const struct finding *f, const json_t *st, double ms,
			struct wstack *w)
{
	size_t n = json_array_size(st);

	memset(w, 0, sizeof(*w));
	w->root = f->stall ? "stall" : "blocking";
	w->pid = inum(f->ev, "pid");
	w->ms = ms;
	if (!f->stall)
		snprintf(w->syscall, sizeof(w->syscall), "[%s]",
			 str(f->ev, "syscall"));
	if (n > STACK_MAX)
		n = STACK_MAX;
	for (size_t i = 0; i < n; i++)
		w->frames[w->n++] = json_array_get(st, n - 1 - i);
}

/*
 * The stacks a finding's time is split over: a recorded stall's sampled
 * stacks by their shares (what is not in them goes to its own stack),
 * else its one stack.  Returns how many were written to @w.
 */
static int wstacks_of(const struct finding *f, struct wstack *w, int max)
{
	const json_t *ss = json_object_get(f->ev, "sample_stacks");
	double rest = 1;
	int n = 0;

	for (size_t i = 0; f->stall && i < json_array_size(ss) && n < max - 1;
	     i++) {
		const json_t *x = json_array_get(ss, i);
		double share = num(x, "share");

		if (!(share > 0 && share <= rest))
			continue; /* hostile or rounded: never more than all */
		rest -= share;
		wstack_fill(f, json_object_get(x, "stack"), f->ms * share,
			    &w[n++]);
	}
	if (rest > 1e-6 || !n) {
		wstack_fill(f, json_object_get(f->ev, "stack"),
			    n ? f->ms * rest : f->ms, &w[n]);
		n++;
	}
	return n;
}

static void folded_name(const json_t *fr, char *buf, size_t len)
{
	frame_label(fr, buf, len);
	for (char *p = buf; *p; p++)
		if (*p == ';' || *p == '\n')
			*p = ':';
}

static int line_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int folded_report(FILE *out, const struct report *r)
{
	static struct wstack ws[WSTACKS_MAX];
	size_t n = 0, cap = r->nfound * WSTACKS_MAX;
	char **lines = calloc(cap ? cap : 1, sizeof(*lines));

	if (!lines)
		return -ENOMEM;
	for (size_t i = 0; i < r->nfound; i++) {
		int nw = wstacks_of(&r->found[i], ws, WSTACKS_MAX);

		for (int k = 0; k < nw && n < cap; k++) {
			const struct wstack w = ws[k];
			char name[512], *line = NULL;
			size_t len = 0;
			FILE *m = open_memstream(&line, &len);

			if (!m)
				continue;
			fputs(w.root, m);
			if (r->npids > 1)
				fprintf(m, ";pid %ld", w.pid);
			for (int j = 0; j < w.n; j++) {
				folded_name(w.frames[j], name, sizeof(name));
				fprintf(m, ";%s", name);
			}
			if (w.syscall[0])
				fprintf(m, ";%s", w.syscall);
			/* weight in microseconds, after a tab to sort by stack
			 */
			fprintf(m, "\t%lld",
				w.ms > 0 && w.ms < 9.2e15
					? (long long)llround(w.ms * 1e3)
					: 0LL);
			fclose(m);
			if (line)
				lines[n++] = line;
		}
	}
	if (n)
		qsort(lines, n, sizeof(*lines), line_cmp);
	/* one line per stack, weights added up */
	for (size_t i = 0; i < n;) {
		char *tab = strrchr(lines[i], '\t');
		size_t klen = (size_t)(tab - lines[i]);
		long long w = 0;
		size_t j = i;

		for (; j < n && !strncmp(lines[j], lines[i], klen) &&
		       lines[j][klen] == '\t';
		     j++)
			w += atoll(lines[j] + klen + 1);
		if (w > 0)
			fprintf(out, "%.*s %lld\n", (int)klen, lines[i], w);
		i = j;
	}
	for (size_t i = 0; i < n; i++)
		free(lines[i]);
	free(lines);
	return 0;
}

/* The index of frame (name, file, line) in @frames, added when new. */
static size_t sframe(json_t *frames, const char *name, const char *file,
		     long line)
{
	size_t i;
	json_t *fr;

	json_array_foreach(frames, i, fr)
	{
		if (inum(fr, "line") == line &&
		    !strcmp(str(fr, "name"), name) &&
		    !strcmp(str(fr, "file"), file))
			return i;
	}
	fr = json_pack("{s:s}", "name", name);
	if (file[0])
		json_object_set_new(fr, "file", json_string(file));
	if (line > 0)
		json_object_set_new(fr, "line", json_integer(line));
	json_array_append_new(frames, fr);
	return json_array_size(frames) - 1;
}

/* The speedscope document: two weighted profiles over shared frames. */
static json_t *speedscope_doc(const struct report *r)
{
	static const char *const names[2] = { "stalled time",
					      "time blocked in syscalls" };
	json_t *frames = json_array(), *profiles = json_array();

	for (int k = 0; k < 2; k++) {
		json_t *samples = json_array(), *weights = json_array();
		double total = 0;

		for (size_t i = 0; i < r->nfound; i++) {
			static struct wstack ws[WSTACKS_MAX];
			int nw;

			if (r->found[i].stall != (k == 0))
				continue;
			nw = wstacks_of(&r->found[i], ws, WSTACKS_MAX);
			for (int q = 0; q < nw; q++) {
				const struct wstack w = ws[q];
				json_t *stack = json_array();

				if (r->npids > 1) {
					char pid[32];

					snprintf(pid, sizeof(pid), "pid %ld",
						 w.pid);
					json_array_append_new(
						stack,
						json_integer((json_int_t)sframe(
							frames, pid, "", 0)));
				}
				for (int j = 0; j < w.n; j++)
					json_array_append_new(
						stack,
						json_integer((json_int_t)sframe(
							frames,
							str(w.frames[j],
							    "function"),
							str(w.frames[j],
							    "file"),
							inum(w.frames[j],
							     "line"))));
				if (w.syscall[0])
					json_array_append_new(
						stack,
						json_integer((json_int_t)sframe(
							frames, w.syscall, "",
							0)));
				json_array_append_new(samples, stack);
				json_array_append_new(weights, json_real(w.ms));
				total += w.ms;
			}
		}
		json_array_append_new(
			profiles,
			json_pack("{s:s, s:s, s:s, s:f, s:f, s:o, s:o}", "type",
				  "sampled", "name", names[k], "unit",
				  "milliseconds", "startValue", 0.0, "endValue",
				  total, "samples", samples, "weights",
				  weights));
	}
	return json_pack("{s:s, s:{s:o}, s:o, s:s, s:s, s:i}", "$schema",
			 "https://www.speedscope.app/file-format-schema.json",
			 "shared", "frames", frames, "profiles", profiles,
			 "name", r->o->title ? r->o->title : r->o->record,
			 "exporter", "asyncprobe " AP_VERSION,
			 "activeProfileIndex", 0);
}

static char *speedscope_text(const struct report *r)
{
	json_t *doc = speedscope_doc(r);
	char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER |
						   JSON_REAL_PRECISION(12))
			 : NULL;

	json_decref(doc);
	return text;
}

static int speedscope_report(FILE *out, const struct report *r)
{
	char *text = speedscope_text(r);

	if (!text)
		return -ENOMEM;
	fprintf(out, "%s\n", text);
	free(text);
	return 0;
}

extern const char ap_flamegraph_html[];

/* The built-in page with the speedscope document inlined; "</" is written
 * "<\/" (the same JSON) so that no string can end the script element. */
static int html_report(FILE *out, const struct report *r)
{
	const char *mark = strstr(ap_flamegraph_html, "/*DATA*/");
	char *text = speedscope_text(r);

	if (!text || !mark) {
		free(text);
		return -ENOMEM;
	}
	fwrite(ap_flamegraph_html, 1, (size_t)(mark - ap_flamegraph_html), out);
	for (const char *p = text; *p; p++) {
		if (p[0] == '<' && p[1] == '/')
			fputs("<\\", out);
		else
			fputc(*p, out);
	}
	fputs(mark + strlen("/*DATA*/"), out);
	free(text);
	return 0;
}

/* Samples with both values: a stall's time, or a blocking call's. */
static int pprof_report(FILE *out, const struct report *r)
{
	static struct wstack ws[WSTACKS_MAX];
	struct pprof_sample *s = NULL;
	struct pprof_frame *fr = NULL;
	size_t nsamples = 0, nframes = 0, si = 0, fi = 0;
	double first = 0, last = 0;
	int err = -ENOMEM;

	/* sized first: a long record has many findings, each a few stacks */
	for (size_t i = 0; i < r->nfound; i++) {
		int nw = wstacks_of(&r->found[i], ws, WSTACKS_MAX);

		nsamples += (size_t)nw;
		for (int k = 0; k < nw; k++)
			nframes += (size_t)ws[k].n;
	}
	s = calloc(nsamples ? nsamples : 1, sizeof(*s));
	fr = calloc(nframes ? nframes : 1, sizeof(*fr));
	if (!s || !fr)
		goto cleanup;
	for (size_t i = 0; i < r->nfound; i++) {
		const struct finding *f = &r->found[i];
		int nw = wstacks_of(f, ws, WSTACKS_MAX);

		for (int k = 0; k < nw && si < nsamples; k++) {
			const struct wstack *w = &ws[k];
			double d = w->ms * 1e6;
			int64_t ns = d > 0 && d < 9.2e18 ? (int64_t)d : 0;
			struct pprof_frame *mine = fr + fi;

			if (fi + (size_t)w->n > nframes)
				break;
			/* pprof wants the leaf first */
			for (int j = 0; j < w->n; j++) {
				const json_t *x = w->frames[w->n - 1 - j];

				mine[j] = (struct pprof_frame){
					str(x, "function"), str(x, "file"),
					inum(x, "line")
				};
			}
			fi += (size_t)w->n;
			s[si++] = (struct pprof_sample){
				.frames = mine,
				.nframes = w->n,
				.syscall =
					f->stall ? NULL : str(f->ev, "syscall"),
				.pid = inum(f->ev, "pid"),
				.tid = inum(f->ev, "tid"),
				.stalled_ns = f->stall ? ns : 0,
				.blocked_ns = f->stall ? 0 : ns,
			};
		}
	}
	for (size_t i = 0; i < r->nevents; i++) {
		const json_t *ev = r->events[i];

		if (!is_kind(ev, "summary"))
			continue;
		if (!first || num(ev, "start_ts") < first)
			first = num(ev, "start_ts");
		if (num(ev, "end_ts") > last)
			last = num(ev, "end_ts");
	}
	err = pprof__write(out, s, si, ns_of(num(r->header, "created")),
			   ns_of(last - first));
cleanup:
	free(fr);
	free(s);
	return err;
}

int report__run(const struct ap_options *o)
{
	struct report r = { .o = o };
	char err[1024];
	FILE *out = stdout;
	int ret = 1, rc = 0;

	if (report_load(&r, err, sizeof(err))) {
		fprintf(stderr, "asyncprobe: %s\n", err);
		goto cleanup;
	}
	if (o->format == AP_FMT_PPROF && !o->output && isatty(STDOUT_FILENO)) {
		fprintf(stderr, "asyncprobe: a pprof profile is binary: write "
				"it with -o FILE.pb.gz\n");
		goto cleanup;
	}
	if (o->output && !(out = fopen(o->output, "we"))) {
		fprintf(stderr, "asyncprobe: cannot write %s: %s\n", o->output,
			strerror(errno));
		out = NULL;
		goto cleanup;
	}
	switch (o->format) {
	case AP_FMT_JSON:
		json_report(out, &r);
		break;
	case AP_FMT_FOLDED:
		rc = folded_report(out, &r);
		break;
	case AP_FMT_SPEEDSCOPE:
		rc = speedscope_report(out, &r);
		break;
	case AP_FMT_PPROF:
		rc = pprof_report(out, &r);
		break;
	case AP_FMT_HTML:
		rc = html_report(out, &r);
		break;
	default:
		text_report(out, &r);
		break;
	}
	if (fflush(out) || ferror(out) || rc) {
		fprintf(stderr, "asyncprobe: writing the report failed: %s\n",
			strerror(rc ? -rc : errno));
		goto cleanup;
	}
	ret = 0;
cleanup:
	if (out && out != stdout && fclose(out) && !ret) {
		fprintf(stderr, "asyncprobe: writing %s failed: %s\n",
			o->output, strerror(errno));
		ret = 1;
	}
	for (size_t i = 0; i < r.nevents; i++)
		json_decref(r.events[i]);
	free(r.events);
	free(r.found);
	json_decref(r.header);
	return ret;
}
