// SPDX-License-Identifier: MIT
#include <jansson.h>
#include <stdbool.h>
#include <string.h>
#include "output.h"

#define TEXT_FRAMES 4

const char *output__short_path(const char *path)
{
	const char *p = path + strlen(path);
	int slashes = 0;

	while (p > path) {
		p--;
		if (*p == '/' && ++slashes == 2)
			return p + 1;
	}
	return path;
}

static json_t *stack_json(const struct ap_stack_out *st)
{
	json_t *a = json_array();

	for (int i = 0; i < st->n; i++) {
		const struct py_frame_info *fr = &st->frames[i];

		json_array_append_new(a,
				      json_pack("{s:s, s:s, s:i}", "function",
						fr->function, "file", fr->file,
						"line", fr->line));
	}
	return a;
}

bool output__is_library(const char *file)
{
	return file[0] == '<' || strstr(file, "/lib/python") ||
	       strstr(file, "-packages/");
}

int output__app_frame(const struct py_frame_info *frames, int n)
{
	for (int i = 0; i < n; i++)
		if (!output__is_library(frames[i].file))
			return i;
	return n > 0 ? 0 : -1;
}

static void text_frame(FILE *f, const struct py_frame_info *fr, bool first)
{
	fprintf(f, "%s%s (%s:%d)", first ? "" : " <- ", fr->function,
		output__short_path(fr->file), fr->line);
}

/*
 * Innermost frame first; when it is library code (subprocess, socket,
 * selectors...), jump to the first frame of the application's own code so
 * that the line to fix is on the line.
 */
static void text_stack(FILE *f, const struct ap_stack_out *st)
{
	int app = output__app_frame(st->frames, st->n), printed = 1, i = 1;

	if (app < 0) {
		fputs("(no Python stack)", f);
		return;
	}
	text_frame(f, &st->frames[0], true);
	if (app > 1) {
		fputs(" <- ...", f);
		i = app;
	}
	for (; i < st->n && printed < TEXT_FRAMES; i++, printed++)
		text_frame(f, &st->frames[i], false);
	if (i < st->n || st->truncated)
		fputs(" <- ...", f);
}

static void json_emit(FILE *f, json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(12));

	if (s) {
		fprintf(f, "%s\n", s);
		free(s);
	}
	json_decref(o);
	fflush(f);
}

static json_t *common(const char *event, double ts, pid_t pid, pid_t ns_pid)
{
	json_t *o = json_pack("{s:s, s:f, s:i}", "event", event, "ts", ts,
			      "pid", (int)pid);

	if (ns_pid && ns_pid != pid)
		json_object_set_new(o, "ns_pid", json_integer(ns_pid));
	return o;
}

/* common fields of a finding: event, ts, pid, tid and namespaced ids */
static json_t *finding_json(const struct ap_finding *x)
{
	json_t *o = common(x->event, x->ts, x->pid, x->ns_pid);

	json_object_set_new(o, "tid", json_integer(x->tid));
	if (x->ns_tid && x->ns_tid != x->tid)
		json_object_set_new(o, "ns_tid", json_integer(x->ns_tid));
	return o;
}

static void text_tid(FILE *f, const struct ap_finding *x)
{
	fprintf(f, "loop tid %u", x->tid);
	if (x->ns_tid && x->ns_tid != x->tid)
		fprintf(f, " (%u in its namespace)", x->ns_tid);
}

void output__loop(FILE *f, enum ap_format fmt, const struct ap_finding *x)
{
	if (fmt == AP_FMT_JSON) {
		json_t *o = finding_json(x);

		json_object_set_new(o, "stack", stack_json(&x->stack));
		json_emit(f, o);
		return;
	}
	fputs("LOOP      event ", f);
	text_tid(f, x);
	fputs("  ", f);
	text_stack(f, &x->stack);
	fputc('\n', f);
	fflush(f);
}

void output__finding(FILE *f, enum ap_format fmt, const struct ap_finding *x)
{
	int is_stall = !strcmp(x->event, "stall");

	if (fmt == AP_FMT_JSON) {
		json_t *o = finding_json(x);

		json_object_set_new(o, "duration_ms",
				    json_real(x->duration_ms));
		if (is_stall) {
			if (!x->in_progress)
				json_object_set_new(
					o, "timed_by",
					json_string(x->clocked ? "loop_clock"
							       : "selector"));
			json_object_set_new(o, "samples",
					    json_integer(x->samples));
			json_object_set_new(o, "stack_share",
					    json_real(x->stack_share));
			if (x->nwstacks) {
				json_t *a = json_array();

				for (int i = 0; i < x->nwstacks; i++)
					json_array_append_new(
						a,
						json_pack(
							"{s:f, s:o}", "share",
							x->wstacks[i].share,
							"stack",
							stack_json(
								&x->wstacks[i]
									 .stack)));
				json_object_set_new(o, "sample_stacks", a);
			}
			json_object_set_new(o, "gc_share",
					    json_real(x->gc_share));
			if (x->gc_timed) {
				json_object_set_new(o, "gc_pause_ms",
						    json_real(x->gc_pause_ms));
				json_object_set_new(
					o, "gc_generations",
					json_pack("[b, b, b]", x->gc_gens & 1,
						  !!(x->gc_gens & 2),
						  !!(x->gc_gens & 4)));
			}
			if (x->gc_known)
				json_object_set_new(
					o, "gc_collections",
					json_pack("[I, I, I]",
						  (json_int_t)
							  x->gc_collections[0],
						  (json_int_t)
							  x->gc_collections[1],
						  (json_int_t)x
							  ->gc_collections[2]));
		} else {
			json_object_set_new(o, "syscall",
					    json_string(x->syscall));
			json_object_set_new(o, "syscall_nr",
					    json_integer(x->syscall_nr));
			if (x->fd >= 0)
				json_object_set_new(o, "fd",
						    json_integer(x->fd));
			if (x->gil_wait) {
				json_object_set_new(o, "gil_wait", json_true());
				if (x->gil_holder_tid)
					json_object_set_new(
						o, "gil_holder_tid",
						json_integer(
							x->gil_holder_tid));
				if (x->gil_holder_name)
					json_object_set_new(
						o, "gil_holder_name",
						json_string(
							x->gil_holder_name));
			}
			if (x->fd >= 0 && x->fdd) {
				json_object_set_new(o, "fd_kind",
						    json_string(x->fdd->kind));
				json_object_set_new(
					o, "fd_target",
					json_string(x->fdd->target));
				if (x->fdd->local[0])
					json_object_set_new(
						o, "fd_local",
						json_string(x->fdd->local));
			}
		}
		if (x->task)
			json_object_set_new(o, "task", json_string(x->task));
		json_object_set_new(o, "stack", stack_json(&x->stack));
		if (x->in_progress)
			json_object_set_new(o, "in_progress", json_true());
		if (x->stack.truncated)
			json_object_set_new(o, "stack_truncated", json_true());
		json_emit(f, o);
		return;
	}
	if (is_stall) {
		fprintf(f, "STALL    %5.0f%s ms  ", x->duration_ms,
			x->in_progress ? "+" : "");
		text_tid(f, x);
		fputs("  ", f);
	} else {
		fprintf(f, "BLOCKING %5.0f%s ms  %s", x->duration_ms,
			x->in_progress ? "+" : "", x->syscall);
		if (x->gil_wait) {
			fputs(" (GIL wait", f);
			if (x->gil_holder_tid)
				fprintf(f, ", held by tid %u '%s'",
					x->gil_holder_tid,
					x->gil_holder_name ? x->gil_holder_name
							   : "?");
			fputc(')', f);
		}
		if (x->fd >= 0) {
			fprintf(f, " fd %d", x->fd);
			if (x->fdd)
				fprintf(f, " (%s %s)", x->fdd->kind,
					x->fdd->target);
		}
		fputs("  ", f);
		text_tid(f, x);
		fputs("  ", f);
	}
	if (x->task)
		fprintf(f, "task '%s'  ", x->task);
	text_stack(f, &x->stack);
	if (is_stall && x->gc_share >= 0.5) {
		int gen = -1;

		for (int i = 0; i < 3; i++)
			if (x->gc_timed ? x->gc_gens & (1u << i)
					: x->gc_known && x->gc_collections[i])
				gen = i;
		fprintf(f, "  [garbage collection: %.0f%%", 100 * x->gc_share);
		if (gen >= 0)
			fprintf(f, ", generation %d", gen);
		fputc(']', f);
	}
	if (x->in_progress)
		fputs("  [still going on]", f);
	fputc('\n', f);
	fflush(f);
}

static json_t *share_json(double v)
{
	return v >= 0 ? json_real(v) : json_null();
}

static json_t *lifetimes_json(const struct ap_lifetimes *l)
{
	return json_pack("{s:o, s:o, s:o, s:I}", "lt_1ms",
			 share_json(l->lt_1ms), "lt_1s", share_json(l->lt_1s),
			 "lt_10s", share_json(l->lt_10s), "tasks_observed",
			 (json_int_t)l->observed);
}

static json_t *sites_json(const struct ap_site *sites, int n, bool leak)
{
	json_t *a = json_array();

	for (int i = 0; i < n; i++) {
		const struct ap_site *x = &sites[i];
		json_t *o = json_pack("{s:s, s:s, s:i}", "function",
				      x->where.function, "file", x->where.file,
				      "line", x->where.line);

		if (leak) {
			json_object_set_new(o, "alive",
					    json_integer((json_int_t)x->count));
			json_object_set_new(
				o, "growth",
				json_integer((json_int_t)x->growth));
		} else {
			json_object_set_new(o, "samples",
					    json_integer((json_int_t)x->count));
			json_object_set_new(o, "share", json_real(x->share));
		}
		json_array_append_new(a, o);
	}
	return a;
}

static void text_sites(FILE *f, const struct ap_site *sites, int n, bool leak)
{
	for (int i = 0; i < n; i++) {
		const struct ap_site *x = &sites[i];

		if (leak)
			fprintf(f, "    %6llu alive (+%lld)  ",
				(unsigned long long)x->count,
				(long long)x->growth);
		else
			fprintf(f, "    %5.1f%%  ", 100 * x->share);
		fprintf(f, "%s (%s:%d)\n", x->where.function,
			output__short_path(x->where.file), x->where.line);
	}
}

static void text_lifetimes(FILE *f, const struct ap_lifetimes *l)
{
	if (l->lt_1ms < 0)
		return;
	fprintf(f, "  lifetimes (of %llu tasks followed): %.0f%% < 1 ms",
		(unsigned long long)l->observed, 100 * l->lt_1ms);
	if (l->lt_1s >= 0)
		fprintf(f, ", %.0f%% < 1 s", 100 * l->lt_1s);
	if (l->lt_10s >= 0)
		fprintf(f, ", %.0f%% < 10 s", 100 * l->lt_10s);
	fputc('\n', f);
}

void output__churn(FILE *f, enum ap_format fmt, const struct ap_churn *x)
{
	if (fmt == AP_FMT_JSON) {
		json_t *o = common("task_churn", x->ts, x->pid, x->ns_pid);

		json_object_set_new(o, "start_ts", json_real(x->start_ts));
		json_object_set_new(o, "duration_ms",
				    json_real(x->duration_s * 1e3));
		json_object_set_new(o, "tasks_created",
				    json_integer((json_int_t)x->created));
		json_object_set_new(o, "rate_per_s", json_real(x->rate));
		json_object_set_new(o, "peak_rate_per_s",
				    json_real(x->peak_rate));
		json_object_set_new(o, "threshold_per_s",
				    json_real(x->threshold));
		json_object_set_new(o, "lifetimes", lifetimes_json(&x->life));
		json_object_set_new(o, "sites",
				    sites_json(x->sites, x->nsites, false));
		json_object_set_new(o, "site_samples",
				    json_integer((json_int_t)x->site_samples));
		if (x->in_progress)
			json_object_set_new(o, "in_progress", json_true());
		json_emit(f, o);
		return;
	}
	fprintf(f,
		"CHURN    %.0f tasks/s for %.1f s (peak %.0f/s, threshold "
		"%.0f/s), %llu tasks created%s\n",
		x->rate, x->duration_s, x->peak_rate, x->threshold,
		(unsigned long long)x->created,
		x->in_progress ? "  [still going on]" : "");
	text_lifetimes(f, &x->life);
	if (x->nsites) {
		fprintf(f, "  created at (sampled, %llu samples):\n",
			(unsigned long long)x->site_samples);
		text_sites(f, x->sites, x->nsites, false);
	}
	fflush(f);
}

void output__leak(FILE *f, enum ap_format fmt, const struct ap_leak *x)
{
	if (fmt == AP_FMT_JSON) {
		json_t *o = common("task_leak", x->ts, x->pid, x->ns_pid);

		json_object_set_new(o, "start_ts", json_real(x->start_ts));
		json_object_set_new(o, "tasks_alive_start",
				    json_integer((json_int_t)x->alive_start));
		json_object_set_new(o, "tasks_alive_end",
				    json_integer((json_int_t)x->alive_end));
		json_object_set_new(o, "growth_per_s",
				    json_real(x->growth_per_s));
		json_object_set_new(o, "sites",
				    sites_json(x->sites, x->nsites, true));
		json_emit(f, o);
		return;
	}
	fprintf(f,
		"LEAK     pending tasks grew %llu -> %llu (+%.0f/s); still "
		"alive, by coroutine:\n",
		(unsigned long long)x->alive_start,
		(unsigned long long)x->alive_end, x->growth_per_s);
	text_sites(f, x->sites, x->nsites, true);
	fflush(f);
}

static json_t *string_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static void cancel_ignored(FILE *f, enum ap_format fmt,
			   const struct ap_hygiene *x)
{
	if (fmt == AP_FMT_JSON) {
		json_t *o = common(x->event, x->ts, x->pid, x->ns_pid);

		json_object_set_new(o, "task", string_or_null(x->task));
		json_object_set_new(o, "cancels_requested",
				    json_integer(x->cancels));
		json_object_set_new(o, "pending_s", json_real(x->pending_s));
		json_object_set_new(o, "threshold_s",
				    json_real(x->threshold_s));
		json_object_set_new(o, "awaits", string_or_null(x->awaits));
		json_object_set_new(o, "stack", stack_json(&x->stack));
		json_emit(f, o);
		return;
	}
	fprintf(f,
		"CANCEL   task %s still runs %.0f s after cancel() (%d "
		"requested), now at ",
		x->task ? x->task : "?", x->pending_s, x->cancels);
	text_stack(f, &x->stack);
	fputc('\n', f);
	fflush(f);
}

/* A hygiene finding's coroutine: its name, and where it is defined. */
static void coroutine_json(json_t *o, const struct ap_hygiene *x)
{
	json_object_set_new(o, "coroutine", string_or_null(x->coroutine));
	json_object_set_new(o, "coroutine_file", string_or_null(x->coro_file));
	json_object_set_new(o, "coroutine_line",
			    x->coro_file ? json_integer(x->coro_line)
					 : json_null());
}

static void never_awaited(FILE *f, enum ap_format fmt,
			  const struct ap_hygiene *x)
{
	if (fmt == AP_FMT_JSON) {
		json_t *o = common(x->event, x->ts, x->pid, x->ns_pid);

		coroutine_json(o, x);
		json_object_set_new(o, "count",
				    json_integer((json_int_t)x->count));
		json_object_set_new(o, "stack", stack_json(&x->stack));
		json_emit(f, o);
		return;
	}
	fprintf(f, "NOAWAIT  coroutine %s was never awaited", x->coroutine);
	if (x->count > 1)
		fprintf(f, " (%llu times here)", (unsigned long long)x->count);
	fputs(", dropped at ", f);
	text_stack(f, &x->stack);
	fputc('\n', f);
	fflush(f);
}

static void finalized(FILE *f, enum ap_format fmt, const struct ap_hygiene *x)
{
	bool pending = !strcmp(x->event, "task_destroyed_pending");

	if (fmt == AP_FMT_JSON) {
		json_t *o = common(x->event, x->ts, x->pid, x->ns_pid);

		if (!pending)
			json_object_set_new(o, "future",
					    string_or_null(x->future));
		json_object_set_new(o, "task", string_or_null(x->task));
		if (!pending)
			json_object_set_new(o, "exception",
					    string_or_null(x->exception));
		coroutine_json(o, x);
		json_object_set_new(o, "stack", stack_json(&x->stack));
		json_emit(f, o);
		return;
	}
	if (pending)
		fputs("PENDING  task", f);
	else
		fprintf(f, "NORETR   %s of %s",
			x->exception ? x->exception : "an exception",
			x->future && !strcmp(x->future, "Future") ? "future"
								  : "task");
	if (x->task)
		fprintf(f, " %s", x->task);
	if (x->coroutine)
		fprintf(f, " (coroutine %s, %s:%d)", x->coroutine,
			output__short_path(x->coro_file), x->coro_line);
	fputs(pending ? " was destroyed while still pending"
		      : " was never retrieved",
	      f);
	if (x->stack.n) {
		fputs("; finalized at ", f);
		text_stack(f, &x->stack);
	}
	fputc('\n', f);
	fflush(f);
}

static void long_await(FILE *f, enum ap_format fmt, const struct ap_hygiene *x)
{
	if (fmt == AP_FMT_JSON) {
		json_t *o = common(x->event, x->ts, x->pid, x->ns_pid);

		json_object_set_new(o, "task", string_or_null(x->task));
		coroutine_json(o, x);
		json_object_set_new(o, "suspended_s", json_real(x->pending_s));
		json_object_set_new(o, "threshold_s",
				    json_real(x->threshold_s));
		json_object_set_new(o, "awaits", string_or_null(x->awaits));
		json_object_set_new(o, "stack", stack_json(&x->stack));
		json_emit(f, o);
		return;
	}
	fprintf(f, "AWAIT    task %s", x->task ? x->task : "?");
	if (x->coroutine)
		fprintf(f, " (coroutine %s, %s:%d)", x->coroutine,
			output__short_path(x->coro_file), x->coro_line);
	fprintf(f, " suspended %.0f s in one await", x->pending_s);
	if (x->awaits)
		fprintf(f, " on a %s", x->awaits);
	if (x->stack.n) {
		fputs(", at ", f);
		text_stack(f, &x->stack);
	}
	fputc('\n', f);
	fflush(f);
}

void output__hygiene(FILE *f, enum ap_format fmt, const struct ap_hygiene *x)
{
	if (!strcmp(x->event, "long_await")) {
		long_await(f, fmt, x);
		return;
	}
	if (!strcmp(x->event, "task_destroyed_pending") ||
	    !strcmp(x->event, "exception_never_retrieved")) {
		finalized(f, fmt, x);
		return;
	}
	if (!strcmp(x->event, "cancel_ignored")) {
		cancel_ignored(f, fmt, x);
		return;
	}
	if (!strcmp(x->event, "never_awaited")) {
		never_awaited(f, fmt, x);
		return;
	}
	if (fmt == AP_FMT_JSON) {
		json_t *o = common(x->event, x->ts, x->pid, x->ns_pid);

		json_object_set_new(o, "fd_kind", json_string(x->fd_kind));
		json_object_set_new(o, "start_ts", json_real(x->start_ts));
		json_object_set_new(o, "fds_start", json_integer(x->fds_start));
		json_object_set_new(o, "fds_end", json_integer(x->fds_end));
		json_object_set_new(o, "growth_per_s",
				    json_real(x->growth_per_s));
		json_emit(f, o);
		return;
	}
	fprintf(f,
		"FDS      %s descriptors grew %lld -> %lld (+%.1f/s) and are "
		"still open\n",
		x->fd_kind, (long long)x->fds_start, (long long)x->fds_end,
		x->growth_per_s);
	fflush(f);
}

static void summary_tasks_json(json_t *o, const struct ap_task_summary *t)
{
	if (!t || !t->known) {
		json_object_set_new(o, "tasks_created", json_null());
		json_object_set_new(o, "tasks_finished", json_null());
		json_object_set_new(o, "tasks_alive_max", json_null());
		return;
	}
	json_object_set_new(o, "tasks_created",
			    json_integer((json_int_t)t->created));
	json_object_set_new(o, "tasks_finished",
			    json_integer((json_int_t)t->finished));
	json_object_set_new(o, "tasks_alive_max",
			    json_integer((json_int_t)t->alive_max));
	json_object_set_new(o, "tasks_alive",
			    json_integer((json_int_t)t->alive));
	json_object_set_new(o, "tasks_peak_rate_per_s",
			    json_real(t->peak_rate));
	if (t->counted_by)
		json_object_set_new(o, "tasks_counted_by",
				    json_string(t->counted_by));
	json_object_set_new(o, "task_lifetimes", lifetimes_json(&t->life));
	json_object_set_new(o, "task_sites",
			    sites_json(t->sites, t->nsites, false));
	json_object_set_new(o, "task_site_samples",
			    json_integer((json_int_t)t->site_samples));
	if (t->truncated)
		json_object_set_new(o, "tasks_truncated", json_true());
	json_t *loops = json_array();
	for (int i = 0; i < t->nloops; i++) {
		const struct ap_task_loop *l = &t->loops[i];
		char id[32];

		snprintf(id, sizeof(id), "0x%llx", (unsigned long long)l->loop);
		json_array_append_new(
			loops,
			json_pack("{s:s, s:o, s:I, s:I}", "loop", id, "tid",
				  l->tid ? json_integer(l->tid) : json_null(),
				  "tasks_alive", (json_int_t)l->alive,
				  "tasks_alive_max", (json_int_t)l->alive_max));
	}
	json_object_set_new(o, "task_loops", loops);
}

static void summary_tasks_text(FILE *f, const struct ap_task_summary *t,
			       double secs)
{
	if (!t || !t->known)
		return;
	fprintf(f,
		"  tasks: %llu created (%.0f/s, peak %.0f/s), %llu finished, "
		"%llu pending at the end, at most %llu%s\n",
		(unsigned long long)t->created,
		secs > 0 ? t->created / secs : 0.0, t->peak_rate,
		(unsigned long long)t->finished, (unsigned long long)t->alive,
		(unsigned long long)t->alive_max,
		t->truncated ? " (walks truncated)" : "");
	for (int i = 0; t->nloops > 1 && i < t->nloops; i++) {
		const struct ap_task_loop *l = &t->loops[i];

		fprintf(f, "    loop 0x%llx", (unsigned long long)l->loop);
		if (l->tid)
			fprintf(f, " (tid %u)", l->tid);
		fprintf(f, ": %llu pending at the end, at most %llu\n",
			(unsigned long long)l->alive,
			(unsigned long long)l->alive_max);
	}
	text_lifetimes(f, &t->life);
	if (t->nsites) {
		fprintf(f, "  tasks created at (sampled, %llu samples):\n",
			(unsigned long long)t->site_samples);
		text_sites(f, t->sites, t->nsites, false);
	}
}

/* One loop's counters, as the summary and loop_stats events carry them. */
static json_t *loop_summary_json(const struct ap_loop_summary *l)
{
	json_t *lo;

	lo = json_pack("{s:i, s:I, s:f, s:f, s:f, s:I, s:I}", "tid",
		       (int)l->tid, "iterations", (json_int_t)l->iterations,
		       "busy_ms", l->busy_ms, "idle_ms", l->idle_ms,
		       "max_iteration_ms", l->max_iteration_ms, "stalls",
		       (json_int_t)l->stalls, "blocking_syscalls",
		       (json_int_t)l->blocking_syscalls);
	if (l->ns_tid && l->ns_tid != l->tid)
		json_object_set_new(lo, "ns_tid", json_integer(l->ns_tid));
	json_object_set_new(lo, "gil_wait_ms", json_real(l->gil_wait_ms));
	json_object_set_new(lo, "gil_waits",
			    json_integer((json_int_t)l->gil_waits));
	json_object_set_new(lo, "gc_ms", json_real(l->gc_ms));
	json_object_set_new(lo, "gc_timing",
			    json_string(l->gc_timed ? "usdt" : "sampled"));
	if (l->gc_timed) {
		json_object_set_new(lo, "gc_pauses",
				    json_integer((json_int_t)l->gc_pauses));
		json_object_set_new(lo, "gc_pause_max_ms",
				    json_real(l->gc_pause_max_ms));
		json_object_set_new(lo, "gc_pauses_by_generation",
				    json_pack("[I, I, I]",
					      (json_int_t)l->gc_gen_pauses[0],
					      (json_int_t)l->gc_gen_pauses[1],
					      (json_int_t)l->gc_gen_pauses[2]));
	}
	json_object_set_new(lo, "cpu_samples",
			    json_integer((json_int_t)l->cpu_samples));
	return lo;
}

void output__loop_stats(FILE *f, pid_t pid, pid_t ns_pid, double ts,
			double start_ts, const struct ap_loop_summary *ls,
			int n)
{
	json_t *o = common("loop_stats", ts, pid, ns_pid);
	json_t *loops = json_array();

	json_object_set_new(o, "start_ts", json_real(start_ts));
	for (int i = 0; i < n; i++)
		json_array_append_new(loops, loop_summary_json(&ls[i]));
	json_object_set_new(o, "loops", loops);
	json_emit(f, o);
}

void output__summary(FILE *f, enum ap_format fmt, const struct ap_summary *s)
{
	int said = 0;

	if (fmt == AP_FMT_JSON) {
		json_t *o = common("summary", s->ts, s->pid, s->ns_pid);
		json_t *loops = json_array();

		json_object_set_new(o, "start_ts", json_real(s->start_ts));
		json_object_set_new(o, "end_ts", json_real(s->end_ts));
		for (int i = 0; i < s->nloops; i++)
			json_array_append_new(loops,
					      loop_summary_json(&s->loops[i]));
		json_object_set_new(o, "loops", loops);
		json_object_set_new(o, "stalls", json_integer(s->stalls));
		json_object_set_new(o, "blocking_syscalls",
				    json_integer(s->blocking_syscalls));
		json_object_set_new(o, "events_lost",
				    json_integer(s->events_lost));
		json_object_set_new(o, "in_progress",
				    json_integer(s->in_progress));
		json_object_set_new(o, "selector_entries_unseen",
				    json_integer(s->entries_unseen));
		json_object_set_new(o, "stale_wakeups",
				    json_integer(s->stale_wakeups));
		json_object_set_new(o, "selector_hook_share",
				    json_real(s->selector_hook_share));
		if (s->python)
			json_object_set_new(o, "python",
					    json_string(s->python));
		if (s->gc_known)
			json_object_set_new(
				o, "gc_collections",
				json_pack("[I, I, I]",
					  (json_int_t)s->gc_collections[0],
					  (json_int_t)s->gc_collections[1],
					  (json_int_t)s->gc_collections[2]));
		if (s->nhygiene) {
			json_t *h = json_object();

			for (int k = 0; k < s->nhygiene; k++)
				json_object_set_new(
					h, s->hygiene_names[k],
					json_integer(
						(json_int_t)s->hygiene[k]));
			json_object_set_new(o, "hygiene_findings", h);
		}
		summary_tasks_json(o, s->tasks);
		json_emit(f, o);
		return;
	}
	fprintf(f, "\nSummary: PID %d, Python %s, %.1f s watched\n", s->pid,
		s->python ? s->python : "?", s->end_ts - s->start_ts);
	if (!s->nloops)
		fprintf(f, "  no asyncio event loop ran during the run\n");
	for (int i = 0; i < s->nloops; i++) {
		const struct ap_loop_summary *l = &s->loops[i];
		double total = l->busy_ms + l->idle_ms;

		fprintf(f,
			"  loop tid %u: %llu iterations, busy %.0f ms "
			"(%.0f%%), "
			"idle %.0f ms, longest iteration %.0f ms, waited "
			"%.0f ms for the GIL, ~%.0f ms in garbage collection\n",
			l->tid, (unsigned long long)l->iterations, l->busy_ms,
			total > 0 ? 100.0 * l->busy_ms / total : 0.0,
			l->idle_ms, l->max_iteration_ms, l->gil_wait_ms,
			l->gc_ms);
		if (l->gc_timed)
			fprintf(f,
				"    garbage collection pauses: %llu (%llu, "
				"%llu, %llu of generations 0, 1, 2), longest "
				"%.1f ms\n",
				(unsigned long long)l->gc_pauses,
				(unsigned long long)l->gc_gen_pauses[0],
				(unsigned long long)l->gc_gen_pauses[1],
				(unsigned long long)l->gc_gen_pauses[2],
				l->gc_pause_max_ms);
	}
	if (s->nloops && s->selector_hook_share < 1)
		fprintf(f,
			"  selector hook attached %.0f%% of the run: the "
			"loops' own clocks timed the stalls in between, "
			"iterations are estimated\n",
			100 * s->selector_hook_share);
	fprintf(f, "  %llu stalls, %llu blocking syscalls",
		(unsigned long long)s->stalls,
		(unsigned long long)s->blocking_syscalls);
	if (s->in_progress)
		fprintf(f, " (%llu still going on at the end)",
			(unsigned long long)s->in_progress);
	if (s->events_lost)
		fprintf(f, ", %llu events LOST (ring buffer full)",
			(unsigned long long)s->events_lost);
	fputc('\n', f);
	if (s->entries_unseen || s->stale_wakeups)
		fprintf(f,
			"  probe misses: %llu selector entries unseen (closed "
			"at the wait), %llu stray wake-ups ignored\n",
			(unsigned long long)s->entries_unseen,
			(unsigned long long)s->stale_wakeups);
	if (s->gc_known)
		fprintf(f,
			"  garbage collections: %llu of generation 0, %llu of "
			"1, %llu of 2\n",
			(unsigned long long)s->gc_collections[0],
			(unsigned long long)s->gc_collections[1],
			(unsigned long long)s->gc_collections[2]);
	for (int k = 0; k < s->nhygiene; k++)
		if (s->hygiene[k])
			fprintf(f, "%s%llu %s",
				said++ ? ", " : "  asyncio hygiene findings: ",
				(unsigned long long)s->hygiene[k],
				s->hygiene_names[k]);
	if (said)
		fputc('\n', f);
	summary_tasks_text(f, s->tasks, s->end_ts - s->start_ts);
	fflush(f);
}
