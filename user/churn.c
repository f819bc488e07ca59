// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "clock.h"
#include "churn.h"
#include "hygiene.h"
#include "pytasks.h"

#define MAX_WALK 200000 /* tasks read per walk */
#define WALK_MIN_S 0.25 /* walk at most this often... */
#define WALK_BUDGET 20	/* ...and spend at most 1/20 of the time on it */
#define PROBES_MAX                                                             \
	8 /* 1 ms lifetime probes per tick, while walks are cheap, tasks       \
	   * are being made and none has fallen in one yet: a burst of         \
	   * creations must fall in one */
#define PROBE_CHEAP_S 5e-4
#define COHORTS_MIN 16	  /* 1 ms cohorts caught before walks must be cheap */
#define OPEN_RETRY_S 1.0  /* asyncio not imported yet: look again */
#define RATE_WINDOW_S 1.0 /* creation rate: tasks in the last second */
#define RING 32		  /* counter readings kept for the rate */
#define MAX_RANGES 128	  /* creation ranges followed for lifetimes... */
#define RANGE_MIN_S 0.2	  /* ...one per 0.2 s at most: 25 s of them */
#define MAX_SITES 256
#define MAX_CODES 4096 /* coroutine functions counted for leaks */
#define TOP_SITES 5
#define MAX_TASK_LOOPS 16  /* event loops whose tasks are counted apart */
#define CREATION_DEPTH 12  /* frames searched for create_task */
#define LEAK_MIN_GROWTH 50 /* pending tasks gained to call it a leak */
#define LEAK_MIN_WALKS 3

enum { LIFE_1MS, LIFE_1S, LIFE_10S, LIFE_N };

static const double life_bound[LIFE_N] = { 1e-3, 1.0, 10.0 };

/* Tasks created with numbers in (lo, hi] between t0 and t1. */
struct range {
	uint64_t lo, hi;
	double t0, t1;
	unsigned done; /* lifetime bounds already judged */
};

struct site {
	uint64_t code; /* the caller's code object and line: the key */
	int line;
	struct py_frame_info where;
	uint64_t n, ep_n;
};

struct code_count {
	uint64_t code;
	uint64_t first, now; /* pending tasks at the first and last walk */
};

struct churn {
	const struct ap_options *o;
	struct py_target *t;
	struct py_symbolizer *sym;
	struct py_tasks *pt;
	bool gave_up; /* no more reads of the target */
	double next_open, next_walk;
	/* created = counter - base + named tasks first seen in walks */
	bool counter_ok;
	uint64_t counter, base, named_new;
	uint64_t tick_counter; /* the counter at the previous tick */
	unsigned epoch;	       /* of the counter's values */
	struct {
		double t;
		uint64_t created;
	} ring[RING];
	int rlen, rhead;
	double peak_rate;
	/* the churn episode going on */
	bool in_ep;
	double ep_start, ep_peak, ep_last;
	uint64_t ep_created0, ep_samples;
	/* walks */
	int walks;
	bool truncated;
	double last_cost;  /* seconds the last walk took */
	double named_seen; /* last walk that found new named tasks */
	double first_walk, last_walk;
	uint64_t alive, alive_first, alive_max;
	uint64_t *numbers, *named, *named_prev;
	size_t nnumbers, nnamed, nnamed_prev;
	size_t cap_numbers, cap_named, cap_named_prev;
	struct range ranges[MAX_RANGES];
	int nranges;
	uint64_t last_walk_counter;
	uint64_t tracked[LIFE_N], died[LIFE_N];
	unsigned cohorts; /* 1 ms cohorts judged (probes that caught some) */
	struct code_count *codes;
	int ncodes;
	int *code_index; /* 1 + index into codes; 0: free */
	/* creation sites, from samples */
	struct site sites[MAX_SITES];
	int nsites;
	uint64_t site_samples;
	/* pending tasks per event loop object */
	struct ap_task_loop loops[MAX_TASK_LOOPS];
	int nloops;
	churn_loop_tid loop_tid;
	void *loop_tid_ctx;
	struct hygiene *hy; /* told of every walk */
	/* what churn__finish hands out */
	struct ap_site out_sites[TOP_SITES], leak_sites[TOP_SITES];
};

struct churn *churn__new(const struct ap_options *o, struct py_target *t,
			 struct py_symbolizer *sym)
{
	struct churn *ch = calloc(1, sizeof(*ch));

	if (!ch)
		return NULL;
	ch->o = o;
	ch->t = t;
	ch->sym = sym;
	ch->codes = calloc(MAX_CODES, sizeof(*ch->codes));
	ch->code_index = calloc(2 * MAX_CODES, sizeof(*ch->code_index));
	if (!ch->codes || !ch->code_index) {
		free(ch->codes);
		free(ch->code_index);
		free(ch);
		return NULL;
	}
	return ch;
}

void churn__free(struct churn *ch)
{
	if (!ch)
		return;
	py_tasks__free(ch->pt);
	free(ch->numbers);
	free(ch->named);
	free(ch->named_prev);
	free(ch->codes);
	free(ch->code_index);
	free(ch);
}

static void sleep_ms(double ms)
{
	struct timespec ts = { 0, (long)(ms * 1e6) };

	nanosleep(&ts, NULL);
}

static uint64_t created(const struct churn *ch)
{
	return ch->counter - ch->base + ch->named_new;
}

static bool counter_read(struct churn *ch)
{
	uint64_t now, base, was;
	unsigned epoch;

	if (py_tasks__counter(ch->pt, &now, &base))
		return false;
	epoch = py_tasks__counter_epoch(ch->pt);
	was = created(ch);
	ch->counter = now;
	ch->base = base;
	if (epoch != ch->epoch) {
		/* calibration settled on another word: numbers read before
		 * are not comparable with this one's; and the tasks it
		 * counted before are added at once, not to this second's
		 * creation rate */
		int64_t jump = (int64_t)(created(ch) - was);

		if (ch->counter_ok) {
			for (int i = 0; i < ch->rlen; i++)
				ch->ring[i].created += jump;
			ch->ep_created0 += jump;
		}
		ch->epoch = epoch;
		ch->nranges = 0;
		ch->last_walk_counter = now;
	}
	ch->counter_ok = true;
	return true;
}

static int push(uint64_t **v, size_t *n, size_t *cap, uint64_t x)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 1024;
		uint64_t *p = realloc(*v, c * sizeof(*p));

		if (!p)
			return -ENOMEM;
		*v = p;
		*cap = c;
	}
	(*v)[(*n)++] = x;
	return 0;
}

struct walk_ctx {
	struct churn *ch;
	uint64_t alive;
};

/* The counts of one coroutine function: open addressing over code_index,
 * twice as large as the table, so a walk of many tasks stays linear. */
static struct code_count *code_slot(struct churn *ch, uint64_t code)
{
	uint32_t h = (uint32_t)((code >> 4) * 0x9e3779b97f4a7c15ULL >> 40) &
		     (2 * MAX_CODES - 1);

	for (int probe = 0; probe < 2 * MAX_CODES; probe++) {
		int *slot = &ch->code_index[(h + probe) & (2 * MAX_CODES - 1)];

		if (*slot && ch->codes[*slot - 1].code == code)
			return &ch->codes[*slot - 1];
		if (!*slot) {
			if (ch->ncodes == MAX_CODES)
				return NULL;
			ch->codes[ch->ncodes].code = code;
			*slot = ++ch->ncodes;
			return &ch->codes[*slot - 1];
		}
	}
	return NULL;
}

static int walk_cb(void *ctx, const struct py_task_info *ti)
{
	struct walk_ctx *w = ctx;
	struct churn *ch = w->ch;
	struct code_count *cc;
	struct ap_task_loop *lp;

	hygiene__task(ch->hy, ti);
	if (ti->state != PY_TASK_PENDING)
		return 0;
	w->alive++;
	lp = NULL;
	for (int i = 0; i < ch->nloops && !lp; i++)
		if (ch->loops[i].loop == ti->loop)
			lp = &ch->loops[i];
	if (!lp && ch->nloops < MAX_TASK_LOOPS) {
		lp = &ch->loops[ch->nloops++];
		lp->loop = ti->loop;
	}
	if (lp)
		lp->alive++;
	/* a name that could not be read (the task just died) is neither */
	if (ti->number)
		push(&ch->numbers, &ch->nnumbers, &ch->cap_numbers, ti->number);
	else if (ti->named)
		push(&ch->named, &ch->nnamed, &ch->cap_named, ti->addr);
	if (ti->code && (cc = code_slot(ch, ti->code)))
		cc->now++;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* How many of the sorted @v are <= @x. */
static size_t count_upto(const uint64_t *v, size_t n, uint64_t x)
{
	size_t a = 0, b = n;

	while (a < b) {
		size_t m = (a + b) / 2;

		if (v[m] <= x)
			a = m + 1;
		else
			b = m;
	}
	return a;
}

/* How many of the sorted @v lie in (lo, hi]. */
static size_t count_in(const uint64_t *v, size_t n, uint64_t lo, uint64_t hi)
{
	return count_upto(v, n, hi) - count_upto(v, n, lo);
}

static bool sorted_has(const uint64_t *v, size_t n, uint64_t x)
{
	/* bsearch() must not be given a NULL array, even an empty one */
	return n && bsearch(&x, v, n, sizeof(*v), cmp_u64) != NULL;
}

/*
 * One walk of the registry.  Lifetimes come from cohorts: tasks numbered
 * in a range created in a known interval, of which the walk finds some
 * still pending.  With @probe the 1 ms cohort is made just before the
 * walk: numbers given out in a 1 ms window that ended 1 ms before it.  A
 * probe sleeps twice, and each wakeup of ours can take the target's CPU:
 * only worth it while tasks are being made.  True if the probe caught some.
 */
static bool walk(struct churn *ch, double now, bool probe)
{
	struct walk_ctx w = { .ch = ch };
	uint64_t ca = ch->counter, cb = 0, *tmp, fresh = 0;
	unsigned epoch0 = ch->epoch;
	bool cohort = false, caught = false, truncated;
	double t0, cost, prev_walk = ch->last_walk;
	size_t tcap;
	int n;

	if (ch->counter_ok && probe) {
		t0 = clock__mono();
		sleep_ms(1);
		cohort = counter_read(ch) && ch->epoch == epoch0;
		cb = ch->counter;
		/* descheduled for long: the window is not 1 ms */
		if (clock__mono() - t0 > 2e-3)
			cohort = false;
		sleep_ms(1);
		caught = cohort && cb > ca;
	}
	t0 = clock__mono();
	/* keep the last walk's named tasks to see which ones are new */
	tmp = ch->named_prev;
	tcap = ch->cap_named_prev;
	ch->named_prev = ch->named;
	ch->cap_named_prev = ch->cap_named;
	ch->nnamed_prev = ch->nnamed;
	ch->named = tmp;
	ch->cap_named = tcap;
	ch->nnamed = 0;
	ch->nnumbers = 0;
	for (int i = 0; i < ch->ncodes; i++)
		ch->codes[i].now = 0;
	for (int i = 0; i < ch->nloops; i++)
		ch->loops[i].alive = 0;
	hygiene__walk_begin(ch->hy);
	n = py_tasks__walk(ch->pt, MAX_WALK, walk_cb, &w, &truncated);
	/* a walk cut short says nothing of the tasks it did not reach */
	if (n >= 0 && !truncated)
		hygiene__walk_end(ch->hy, ch->pt, now);
	for (int i = 0; i < ch->nloops; i++)
		if (ch->loops[i].alive > ch->loops[i].alive_max)
			ch->loops[i].alive_max = ch->loops[i].alive;
	cost = clock__mono() - t0;
	ch->last_cost = cost;
	/* spend at most 1/WALK_BUDGET of the time walking */
	ch->next_walk =
		now + (cost * WALK_BUDGET > WALK_MIN_S ? cost * WALK_BUDGET
						       : WALK_MIN_S - 0.01);
	if (n < 0)
		return caught;
	ch->truncated |= truncated;
	if (ch->nnumbers) /* qsort wants an array, even of none */
		qsort(ch->numbers, ch->nnumbers, sizeof(*ch->numbers), cmp_u64);
	if (ch->nnamed)
		qsort(ch->named, ch->nnamed, sizeof(*ch->named), cmp_u64);
	ch->alive = w.alive;
	if (w.alive > ch->alive_max)
		ch->alive_max = w.alive;
	ch->last_walk = now;
	if (!ch->walks++) {
		ch->first_walk = now;
		ch->alive_first = w.alive;
		for (int i = 0; i < ch->ncodes; i++)
			ch->codes[i].first = ch->codes[i].now;
	} else {
		for (size_t i = 0; i < ch->nnamed; i++)
			fresh += !sorted_has(ch->named_prev, ch->nnamed_prev,
					     ch->named[i]);
		/* a task named at creation takes no number: count the new
		 * ones seen.  Up to 3.12 asyncio.create_task(name=) numbers
		 * the task first and renames it: the counter has those. */
		if (ch->t->minor >= 13)
			ch->named_new += fresh;
	}
	/* new named tasks hide their numbers: cohorts would look dead */
	if (fresh)
		ch->named_seen = now;
	if (ch->walks == 1 || truncated || !ch->counter_ok ||
	    (ch->named_seen && now - ch->named_seen < life_bound[LIFE_N - 1]))
		return caught;
	if (cohort && cb > ca) {
		ch->cohorts++;
		ch->tracked[LIFE_1MS] += cb - ca;
		ch->died[LIFE_1MS] +=
			cb - ca - count_in(ch->numbers, ch->nnumbers, ca, cb);
	}
	/* older cohorts: everything numbered between two walks, judged
	 * once its youngest member is past each bound */
	for (int i = 0; i < ch->nranges; i++) {
		struct range *r = &ch->ranges[i];

		for (int b = LIFE_1S; b < LIFE_N; b++) {
			if (r->done & (1u << b) || now - r->t1 < life_bound[b])
				continue;
			r->done |= 1u << b;
			ch->tracked[b] += r->hi - r->lo;
			ch->died[b] += r->hi - r->lo -
				       count_in(ch->numbers, ch->nnumbers,
						r->lo, r->hi);
		}
	}
	while (ch->nranges && (ch->ranges[0].done & (1u << (LIFE_N - 1)) ||
			       ch->nranges == MAX_RANGES))
		memmove(ch->ranges, ch->ranges + 1,
			--ch->nranges * sizeof(*ch->ranges));
	/* one range per RANGE_MIN_S: the ranges kept span the longest bound */
	if (ca > ch->last_walk_counter &&
	    (!ch->nranges ||
	     now - ch->ranges[ch->nranges - 1].t1 >= RANGE_MIN_S)) {
		ch->ranges[ch->nranges++] = (struct range){
			.lo = ch->last_walk_counter,
			.hi = ca,
			.t0 = prev_walk,
			.t1 = now,
		};
		ch->last_walk_counter = ca;
	}
	return caught;
}

static void task_open(struct churn *ch, double now)
{
	char err[256];
	int e;

	e = py_tasks__open(&ch->pt, ch->t, err, sizeof(err));
	if (e == -ENOENT && !strstr(err, "registry")) {
		ch->next_open = now + OPEN_RETRY_S; /* not imported yet */
		return;
	}
	if (e) {
		ch->gave_up = true;
		fprintf(stderr, "asyncprobe: tasks are not counted: %s\n", err);
		return;
	}
	if (!counter_read(ch))
		fprintf(stderr,
			"asyncprobe: no task counter found in the _asyncio "
			"module (stripped and built in?): tasks_created "
			"counts only tasks seen alive\n");
	else if (ch->o->verbose)
		fprintf(stderr,
			"asyncprobe: tasks counted by the automatic-name "
			"counter (%s)\n",
			py_tasks__counter_source(ch->pt));
	ch->last_walk_counter = ch->counter;
	ch->tick_counter = ch->counter;
	(void)walk(ch, now, true);
}

void churn__set_hygiene(struct churn *ch, struct hygiene *hy)
{
	ch->hy = hy;
}

void churn__set_loop_tid(struct churn *ch, churn_loop_tid fn, void *ctx)
{
	ch->loop_tid = fn;
	ch->loop_tid_ctx = ctx;
}

static void episode_report(struct churn *ch, double now, bool in_progress);

void churn__tick(struct churn *ch, double now)
{
	double rate = 0;
	int oldest = -1;
	bool making;

	if (ch->gave_up)
		return;
	if (!ch->pt) {
		if (now >= ch->next_open)
			task_open(ch, now);
		if (!ch->pt)
			return;
	}
	if (ch->counter_ok || ch->walks == 0)
		counter_read(ch);
	making = ch->counter != ch->tick_counter;
	ch->tick_counter = ch->counter;
	/* more probes while walks are cheap; and, whatever they cost, until
	 * the 1 ms bound has a few cohorts (a slow walk must not leave it
	 * unknown) */
	if (now >= ch->next_walk) {
		walk(ch, now, making);
		for (int i = 1; making && i < PROBES_MAX &&
				(ch->last_cost < PROBE_CHEAP_S ||
				 ch->cohorts < COHORTS_MIN);
		     i++)
			walk(ch, clock__mono(), true);
	}
	/* creation rate over the last second */
	ch->ring[ch->rhead] = (typeof(ch->ring[0])){ now, created(ch) };
	ch->rhead = (ch->rhead + 1) % RING;
	if (ch->rlen < RING)
		ch->rlen++;
	for (int i = 1; i < ch->rlen; i++) {
		int k = (ch->rhead - 1 - i + 2 * RING) % RING;

		oldest = k;
		if (now - ch->ring[k].t >= RATE_WINDOW_S - 0.01)
			break;
	}
	if (oldest < 0 || now - ch->ring[oldest].t < RATE_WINDOW_S / 2)
		return;
	rate = (created(ch) - ch->ring[oldest].created) /
	       (now - ch->ring[oldest].t);
	if (rate > ch->peak_rate)
		ch->peak_rate = rate;
	if (rate > ch->o->churn_threshold) {
		if (!ch->in_ep) {
			ch->in_ep = true;
			ch->ep_start = ch->ring[oldest].t;
			ch->ep_created0 = ch->ring[oldest].created;
			ch->ep_peak = 0;
			ch->ep_samples = 0;
			for (int i = 0; i < ch->nsites; i++)
				ch->sites[i].ep_n = 0;
		}
		if (rate > ch->ep_peak)
			ch->ep_peak = rate;
		ch->ep_last = now;
	} else if (ch->in_ep) {
		episode_report(ch, now, false);
	}
}

static bool in_asyncio(const char *file)
{
	return strstr(file, "/asyncio/") != NULL;
}

static bool creates_tasks(const char *function)
{
	size_t n = strlen(function);

	return (n >= 11 && !strcmp(function + n - 11, "create_task")) ||
	       (n >= 13 && !strcmp(function + n - 13, "ensure_future"));
}

void churn__sample(struct churn *ch, const struct ap_frame *frames, int n)
{
	struct py_frame_info fi;
	bool creating = false;
	struct site *s = NULL;

	if (!ch->pt)
		return;
	for (int i = 0; i < n && i < CREATION_DEPTH; i++) {
		if (pysym__resolve(ch->sym, &frames[i], &fi))
			return;
		if (in_asyncio(fi.file)) {
			creating |= creates_tasks(fi.function);
			continue;
		}
		if (!creating)
			return; /* user code on top: not creating a task */
		for (int j = 0; j < ch->nsites; j++)
			if (ch->sites[j].code == frames[i].code &&
			    ch->sites[j].line == fi.line)
				s = &ch->sites[j];
		if (!s && ch->nsites < MAX_SITES) {
			s = &ch->sites[ch->nsites++];
			memset(s, 0, sizeof(*s));
			s->code = frames[i].code;
			s->line = fi.line;
			s->where = fi;
		}
		ch->site_samples++;
		ch->ep_samples += ch->in_ep;
		if (s) {
			s->n++;
			s->ep_n += ch->in_ep;
		}
		return;
	}
}

/* The @max sites with the most samples (episode or whole run). */
static int top_sites(struct churn *ch, bool episode, struct ap_site *out,
		     int max)
{
	uint64_t total = episode ? ch->ep_samples : ch->site_samples;
	int n = 0;
	bool *used = calloc(ch->nsites + 1, sizeof(*used));

	if (!used)
		return 0;
	while (n < max) {
		int best = -1;
		uint64_t bn = 0;

		for (int i = 0; i < ch->nsites; i++) {
			uint64_t v =
				episode ? ch->sites[i].ep_n : ch->sites[i].n;

			if (!used[i] && v > bn) {
				bn = v;
				best = i;
			}
		}
		if (best < 0)
			break;
		used[best] = true;
		out[n++] = (struct ap_site){
			.where = ch->sites[best].where,
			.count = bn,
			.share = total ? (double)bn / total : 0,
		};
	}
	free(used);
	return n;
}

static void lifetimes(const struct churn *ch, struct ap_lifetimes *l)
{
	double *v[LIFE_N] = { &l->lt_1ms, &l->lt_1s, &l->lt_10s };

	l->observed = 0;
	for (int b = 0; b < LIFE_N; b++) {
		*v[b] = ch->tracked[b] ? (double)ch->died[b] / ch->tracked[b]
				       : -1;
		if (ch->tracked[b] > l->observed)
			l->observed = ch->tracked[b];
	}
}

static void episode_report(struct churn *ch, double now, bool in_progress)
{
	struct ap_churn x = {
		.pid = ch->t->pid,
		.ns_pid = ch->t->ns_pid != ch->t->pid ? ch->t->ns_pid : 0,
		.ts = now,
		.start_ts = ch->ep_start,
		.duration_s = ch->ep_last - ch->ep_start,
		.created = created(ch) - ch->ep_created0,
		.peak_rate = ch->ep_peak,
		.threshold = ch->o->churn_threshold,
		.in_progress = in_progress,
		.sites = ch->out_sites,
		.site_samples = ch->ep_samples,
	};

	ch->in_ep = false;
	if (x.duration_s > 0)
		x.rate = x.created / x.duration_s;
	lifetimes(ch, &x.life);
	x.nsites = top_sites(ch, true, ch->out_sites, TOP_SITES);
	output__churn(ch->o->out, ch->o->format, &x);
}

static void leak_report(struct churn *ch, double now)
{
	struct ap_leak x = {
		.pid = ch->t->pid,
		.ns_pid = ch->t->ns_pid != ch->t->pid ? ch->t->ns_pid : 0,
		.ts = now,
		.start_ts = ch->first_walk,
		.alive_start = ch->alive_first,
		.alive_end = ch->alive,
		.sites = ch->leak_sites,
	};
	uint64_t growth = ch->alive - ch->alive_first;

	if (ch->walks < LEAK_MIN_WALKS || ch->alive <= ch->alive_first ||
	    growth < LEAK_MIN_GROWTH || growth * 5 < ch->alive_first ||
	    ch->alive * 10 < ch->alive_max * 9)
		return;
	x.growth_per_s = growth / (ch->last_walk - ch->first_walk);
	/* the coroutine functions whose pending tasks grew the most */
	for (int n = 0; n < TOP_SITES; n++) {
		int best = -1;
		int64_t bg = 0;

		for (int i = 0; i < ch->ncodes; i++) {
			int64_t g = (int64_t)ch->codes[i].now -
				    (int64_t)ch->codes[i].first;

			if (g > bg) {
				bg = g;
				best = i;
			}
		}
		if (best < 0)
			break;
		pysym__code(ch->sym, ch->codes[best].code,
			    &ch->leak_sites[n].where);
		ch->leak_sites[n].count = ch->codes[best].now;
		ch->leak_sites[n].growth = bg;
		ch->codes[best].first = ch->codes[best].now; /* used */
		x.nsites++;
	}
	output__leak(ch->o->out, ch->o->format, &x);
}

struct py_tasks *churn__tasks(const struct churn *ch)
{
	return ch ? ch->pt : NULL;
}

int churn__counts(const struct churn *ch, struct ap_task_counts *out)
{
	if (!ch || !ch->pt)
		return -1;
	out->created = created(ch);
	out->alive = ch->alive;
	/* what came in and is not pending any more */
	out->finished = out->created + ch->alive_first > ch->alive
				? out->created + ch->alive_first - ch->alive
				: 0;
	return 0;
}

void churn__freeze(struct churn *ch)
{
	if (ch)
		ch->gave_up = true;
}

void churn__finish(struct churn *ch, double now, struct ap_task_summary *s)
{
	struct ap_task_counts tc = { 0 };

	memset(s, 0, sizeof(*s));
	if (!ch || !ch->pt)
		return;
	churn__tick(ch, now);
	if (ch->o->verbose)
		fprintf(stderr,
			"asyncprobe: %d walks of the task registry, the last "
			"took %.1f ms%s\n",
			ch->walks, ch->last_cost * 1e3,
			ch->truncated ? ", some truncated" : "");
	if (ch->in_ep)
		episode_report(ch, now, true);
	leak_report(ch, now);
	churn__counts(ch, &tc);
	s->known = 1;
	s->created = created(ch);
	s->alive = ch->alive;
	s->alive_max = ch->alive_max;
	s->finished = tc.finished;
	s->peak_rate = ch->peak_rate;
	s->counted_by =
		ch->counter_ok ? py_tasks__counter_source(ch->pt) : "walks";
	s->truncated = ch->truncated;
	lifetimes(ch, &s->life);
	s->sites = ch->out_sites;
	s->nsites = top_sites(ch, false, ch->out_sites, TOP_SITES);
	s->site_samples = ch->site_samples;
	for (int i = 0; i < ch->nloops; i++)
		if (ch->loop_tid)
			ch->loops[i].tid =
				ch->loop_tid(ch->loop_tid_ctx,
					     ch->loops[i].loop, ch->nloops);
	s->loops = ch->loops;
	s->nloops = ch->nloops;
}
