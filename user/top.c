// SPDX-License-Identifier: MIT
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "clock.h"
#include "top.h"

#define MAX_PREV 256
#define RECENT_SHOWN 8
#define RECENT_S 60.0 /* findings older than this are not shown */

static const uint64_t lag_bounds[AP_LAG_NBOUNDS] = AP_LAG_BOUNDS;

/* A loop's counters at the last refresh: the view shows rates. */
struct prev_loop {
	pid_t pid;
	uint32_t tid;
	uint64_t busy, idle, gil, gc;
	uint64_t lag[AP_LAG_NBOUNDS + 1];
};

struct prev_tasks {
	pid_t pid;
	uint64_t created, finished;
};

struct top {
	double last;
	struct prev_loop loops[MAX_PREV];
	int nloops;
	struct prev_tasks tasks[MAX_PREV];
	int ntasks;
};

struct top *top__new(void)
{
	return calloc(1, sizeof(struct top));
}

void top__free(struct top *t)
{
	free(t);
}

static struct prev_loop *prev_loop(struct top *t, pid_t pid, uint32_t tid,
				   bool *fresh)
{
	*fresh = false;
	for (int i = 0; i < t->nloops; i++)
		if (t->loops[i].pid == pid && t->loops[i].tid == tid)
			return &t->loops[i];
	*fresh = true;
	if (t->nloops < MAX_PREV) {
		memset(&t->loops[t->nloops], 0, sizeof(t->loops[0]));
		t->loops[t->nloops].pid = pid;
		t->loops[t->nloops].tid = tid;
		return &t->loops[t->nloops++];
	}
	return NULL;
}

static struct prev_tasks *prev_tasks(struct top *t, pid_t pid, bool *fresh)
{
	*fresh = false;
	for (int i = 0; i < t->ntasks; i++)
		if (t->tasks[i].pid == pid)
			return &t->tasks[i];
	*fresh = true;
	if (t->ntasks < MAX_PREV) {
		memset(&t->tasks[t->ntasks], 0, sizeof(t->tasks[0]));
		t->tasks[t->ntasks].pid = pid;
		return &t->tasks[t->ntasks++];
	}
	return NULL;
}

/* The bucket bound the q-quantile of @d is under, as text. */
static void quantile(const uint64_t *d, double q, char *buf, size_t len)
{
	uint64_t total = 0, cum = 0;

	for (int i = 0; i <= AP_LAG_NBOUNDS; i++)
		total += d[i];
	if (!total) {
		snprintf(buf, len, "-");
		return;
	}
	for (int i = 0; i < AP_LAG_NBOUNDS; i++) {
		cum += d[i];
		if (cum >= q * (double)total) {
			double ms = lag_bounds[i] / 1e6;

			snprintf(buf, len, ms < 1 ? "<%.2gms" : "<%.0fms", ms);
			return;
		}
	}
	snprintf(buf, len, ">%.0fs", lag_bounds[AP_LAG_NBOUNDS - 1] / 1e9);
}

static int recent_cmp(const void *a, const void *b)
{
	const struct ap_recent *x = a, *y = b;

	return x->ms < y->ms ? 1 : x->ms > y->ms ? -1 : 0;
}

void top__draw(struct top *t, struct collector **cs, int n, FILE *out, bool tty)
{
	static struct ap_recent recent[MAX_PREV];
	double now = clock__mono(), dt = t->last ? now - t->last : 0;
	int nrecent = 0;
	char clock[16];
	time_t wall = time(NULL);
	struct tm tm;

	t->last = now;
	strftime(clock, sizeof(clock), "%H:%M:%S", localtime_r(&wall, &tm));
	if (tty)
		fputs("\033[H\033[2J", out); /* home, clear */
	else
		fputs("\f\n", out); /* one page per refresh */
	fprintf(out, "asyncprobe top  %s  %d process%s  (Ctrl-C ends)\n\n",
		clock, n, n == 1 ? "" : "es");
	fprintf(out, "%-8s %-8s %6s %6s %8s %8s %9s %5s %5s\n", "PID", "LOOP",
		"BUSY%", "ITER/s", "LAG p50", "LAG p99", "RUNNING", "GIL%",
		"GC%");
	for (int c = 0; c < n; c++) {
		struct ap_target_metrics m;

		collector__metrics(cs[c], &m);
		if (!m.nloops)
			fprintf(out, "%-8d %-8s (no asyncio loop seen yet)\n",
				m.pid, "-");
		for (int i = 0; i < m.nloops; i++) {
			const struct ap_loop_metrics *l = &m.loops[i];
			uint64_t d[AP_LAG_NBOUNDS + 1], iters = 0, gc = 0;
			struct prev_loop *p;
			char p50[16], p99[16], run[16];
			double busy, all;
			bool fresh;

			for (int g = 0; g < 3; g++)
				gc += l->gc_ns[g];
			p = prev_loop(t, m.pid, l->tid, &fresh);
			if (!p)
				continue;
			if (fresh || !dt) {
				/* no rates yet: since the start */
				memset(p->lag, 0, sizeof(p->lag));
				p->busy = p->idle = p->gil = p->gc = 0;
			}
			for (int b = 0; b <= AP_LAG_NBOUNDS; b++) {
				d[b] = l->lag[b] - p->lag[b];
				iters += d[b];
			}
			busy = (double)(l->busy_ns - p->busy);
			all = busy + (double)(l->idle_ns - p->idle);
			quantile(d, 0.5, p50, sizeof(p50));
			quantile(d, 0.99, p99, sizeof(p99));
			snprintf(run, sizeof(run),
				 l->current_ns ? "%.1fs" : "-",
				 l->current_ns / 1e9);
			fprintf(out,
				"%-8d %-8u %5.0f%% %6.0f %8s %8s %9s %4.0f%% "
				"%4.0f%%\n",
				m.pid, l->tid, all > 0 ? 100 * busy / all : 0,
				dt ? iters / dt : 0, p50, p99, run,
				all > 0 ? 100.0 * (l->gil_wait_ns - p->gil) /
						  all
					: 0,
				all > 0 && l->gc_timed
					? 100.0 * (gc - p->gc) / all
					: 0);
			p->busy = l->busy_ns;
			p->idle = l->idle_ns;
			p->gil = l->gil_wait_ns;
			p->gc = gc;
			memcpy(p->lag, l->lag, sizeof(p->lag));
		}
		if (m.tasks_known) {
			struct prev_tasks *p;
			bool fresh;

			p = prev_tasks(t, m.pid, &fresh);
			if (p) {
				if (fresh || !dt)
					fprintf(out,
						"         tasks: %llu alive\n",
						(unsigned long long)
							m.tasks_alive);
				else
					fprintf(out,
						"         tasks: %.0f "
						"created/s, "
						"%.0f finished/s, %llu alive\n",
						(m.tasks_created - p->created) /
							dt,
						(m.tasks_finished -
						 p->finished) /
							dt,
						(unsigned long long)
							m.tasks_alive);
				p->created = m.tasks_created;
				p->finished = m.tasks_finished;
			}
		}
		nrecent += collector__recent(cs[c], recent + nrecent,
					     MAX_PREV - nrecent);
	}
	/* the worst of the last minute, longest first */
	{
		int kept = 0;

		for (int i = 0; i < nrecent; i++)
			if (now - recent[i].ts <= RECENT_S)
				recent[kept++] = recent[i];
		qsort(recent, (size_t)kept, sizeof(recent[0]), recent_cmp);
		fprintf(out, "\nWorst in the last %.0f s:\n", RECENT_S);
		if (!kept)
			fprintf(out, "  no stalls or blocking syscalls\n");
		for (int i = 0; i < kept && i < RECENT_SHOWN; i++)
			fprintf(out, "  %-8s %7.0f ms  %s%s%s  %.0fs ago\n",
				recent[i].stall ? "STALL" : "BLOCKING",
				recent[i].ms, recent[i].what,
				recent[i].what[0] ? "  " : "", recent[i].where,
				now - recent[i].ts);
	}
	fflush(out);
}
