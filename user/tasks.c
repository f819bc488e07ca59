// SPDX-License-Identifier: MIT
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "output.h"
#include "pysym.h"
#include "pytarget.h"
#include "pytasks.h"
#include "tasks.h"

#define MAX_DUMP 100000	   /* tasks listed */
#define MAX_CORO_FRAMES 64 /* coroutines per task */
#define MAX_AWAITERS 64	   /* tasks awaiting one task, as recorded */

struct dump_task {
	struct py_task_info ti;
	char name[128];
	uint64_t awaits; /* what its coroutine chain waits on */
	int awaits_task; /* index of that task, -1: not a task */
	int nframes;
	struct py_frame_info *frames; /* outermost first */
};

struct dump {
	struct dump_task *v;
	int n, cap;
	/* who awaits whom: task from awaits task to (indexes into v) */
	struct edge {
		int from, to;
	} * e;
	int ne, ecap;
};

static void edge_add(struct dump *d, int from, int to)
{
	if (from < 0 || to < 0 || from == to)
		return;
	for (int i = 0; i < d->ne; i++)
		if (d->e[i].from == from && d->e[i].to == to)
			return;
	if (d->ne == d->ecap) {
		int cap = d->ecap ? d->ecap * 2 : 64;
		struct edge *e = realloc(d->e, cap * sizeof(*e));

		if (!e)
			return;
		d->e = e;
		d->ecap = cap;
	}
	d->e[d->ne++] = (struct edge){ from, to };
}

static int collect(void *ctx, const struct py_task_info *ti)
{
	struct dump *d = ctx;

	if (d->n == d->cap) {
		int cap = d->cap ? d->cap * 2 : 256;
		struct dump_task *v = realloc(d->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		d->v = v;
		d->cap = cap;
	}
	memset(&d->v[d->n], 0, sizeof(d->v[d->n]));
	d->v[d->n].ti = *ti;
	d->v[d->n++].awaits_task = -1;
	return 0;
}

static int cmp_addr(const void *a, const void *b)
{
	uint64_t x = ((const struct dump_task *)a)->ti.addr,
		 y = ((const struct dump_task *)b)->ti.addr;

	return x < y ? -1 : x > y;
}

static int find_task(const struct dump *d, uint64_t addr)
{
	int lo = 0, hi = d->n - 1;

	while (lo <= hi) {
		int mid = (lo + hi) / 2;

		if (d->v[mid].ti.addr == addr)
			return mid;
		if (d->v[mid].ti.addr < addr)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

static const char *state_name(int state)
{
	switch (state) {
	case PY_TASK_PENDING:
		return "pending";
	case PY_TASK_CANCELLED:
		return "cancelled";
	case PY_TASK_FINISHED:
		return "finished";
	}
	return "unknown";
}

/* Number tasks by their automatic number, then by name. */
static int cmp_order(const void *a, const void *b)
{
	const struct dump_task *x = a, *y = b;

	if (x->ti.number != y->ti.number) {
		if (!x->ti.number || !y->ti.number)
			return x->ti.number ? -1 : 1;
		return x->ti.number < y->ti.number ? -1 : 1;
	}
	return strcmp(x->name, y->name);
}

static void print_text(const struct py_target *t, struct dump *d,
		       struct py_tasks *pt, bool truncated, int pending)
{
	printf("PID %d (Python %d.%d): %d asyncio tasks, %d pending%s\n",
	       t->pid, t->major, t->minor, d->n, pending,
	       truncated ? " (list truncated)" : "");
	for (int i = 0; i < d->n; i++) {
		struct dump_task *x = &d->v[i];
		char what[64] = "";

		int shown = 0;

		printf("\n%s  %s", x->name, state_name(x->ti.state));
		for (int j = 0; j < d->ne; j++)
			if (d->e[j].from == i)
				printf("%s%s", shown++ ? ", " : "  awaiting ",
				       d->v[d->e[j].to].name);
		if (!shown && x->awaits &&
		    !py_tasks__type_name(pt, x->awaits, what, sizeof(what)))
			printf("  awaiting %s", what);
		printf("\n");
		for (int j = 0; j < x->nframes; j++) {
			const struct py_frame_info *f = &x->frames[j];

			printf("    %s (%s:%d)\n", f->function,
			       output__short_path(f->file), f->line);
		}
		bool first = true;
		for (int j = 0; j < d->ne; j++) {
			if (d->e[j].to != i)
				continue;
			printf("%s%s", first ? "    awaited by: " : ", ",
			       d->v[d->e[j].from].name);
			first = false;
		}
		if (!first)
			printf("\n");
	}
}

static void print_json(const struct py_target *t, struct dump *d,
		       struct py_tasks *pt, bool truncated, int pending)
{
	json_t *o = json_pack("{s:s, s:i, s:s, s:i, s:i, s:b}", "event",
			      "tasks", "pid", t->pid, "python", "", "count",
			      d->n, "pending", pending, "truncated", truncated);
	json_t *arr = json_array();
	char ver[32], id[32], what[64];

	snprintf(ver, sizeof(ver), "%d.%d", t->major, t->minor);
	json_object_set_new(o, "python", json_string(ver));
	for (int i = 0; i < d->n; i++) {
		struct dump_task *x = &d->v[i];
		json_t *tj, *st = json_array(), *by = json_array();

		snprintf(id, sizeof(id), "0x%llx",
			 (unsigned long long)x->ti.addr);
		tj = json_pack("{s:s, s:s, s:s}", "id", id, "name", x->name,
			       "state", state_name(x->ti.state));
		for (int j = 0; j < x->nframes; j++)
			json_array_append_new(
				st, json_pack("{s:s, s:s, s:i}", "function",
					      x->frames[j].function, "file",
					      x->frames[j].file, "line",
					      x->frames[j].line));
		json_object_set_new(tj, "coroutine_stack", st);
		if (x->awaits_task >= 0) {
			snprintf(id, sizeof(id), "0x%llx",
				 (unsigned long long)d->v[x->awaits_task]
					 .ti.addr);
			json_object_set_new(tj, "awaiting", json_string(id));
			json_object_set_new(tj, "awaiting_type",
					    json_string("Task"));
		} else if (x->awaits &&
			   !py_tasks__type_name(pt, x->awaits, what,
						sizeof(what))) {
			json_object_set_new(tj, "awaiting_type",
					    json_string(what));
		}
		json_t *tasks = json_array();

		for (int j = 0; j < d->ne; j++) {
			const struct edge *e = &d->e[j];
			int other = e->to == i ? e->from : e->to;

			if (e->to != i && e->from != i)
				continue;
			snprintf(id, sizeof(id), "0x%llx",
				 (unsigned long long)d->v[other].ti.addr);
			json_array_append_new(e->to == i ? by : tasks,
					      json_string(id));
		}
		json_object_set_new(tj, "awaited_by", by);
		json_object_set_new(tj, "awaiting_tasks", tasks);
		json_array_append_new(arr, tj);
	}
	json_object_set_new(o, "tasks", arr);
	char *s = json_dumps(o, JSON_COMPACT);
	if (s)
		printf("%s\n", s);
	free(s);
	json_decref(o);
}

int tasks__dump(const struct ap_options *o)
{
	struct py_symbolizer *sym = NULL;
	struct py_tasks *pt = NULL;
	struct dump d = { 0 };
	struct ap_frame frames[MAX_CORO_FRAMES];
	uint64_t by[MAX_AWAITERS];
	struct py_target t;
	char err[512];
	bool truncated = false;
	int ret = 1, n, nb, pending = 0;

	if (py_target__open(&t, o->pid, err, sizeof(err))) {
		fprintf(stderr, "asyncprobe: %s\n", err);
		return 1;
	}
	if (t.major == 3 && t.minor < 11) {
		fprintf(stderr,
			"asyncprobe: PID %d runs Python %d.%d; the task dump "
			"needs 3.11 or newer (older coroutines keep no "
			"readable await chain); the watch mode still counts "
			"tasks\n",
			o->pid, t.major, t.minor);
		return 1;
	}
	if (py_tasks__open(&pt, &t, err, sizeof(err))) {
		fprintf(stderr, "asyncprobe: PID %d: %s\n", o->pid, err);
		return 1;
	}
	sym = pysym__new(&t);
	if (!sym) {
		fprintf(stderr, "asyncprobe: out of memory\n");
		goto cleanup;
	}
	n = py_tasks__walk(pt, MAX_DUMP, collect, &d, &truncated);
	if (n < 0) {
		fprintf(stderr,
			"asyncprobe: cannot list the tasks of PID %d: %s\n",
			o->pid, strerror(-n));
		goto cleanup;
	}
	if (d.n) /* qsort wants an array, even of none */
		qsort(d.v, d.n, sizeof(*d.v), cmp_addr);
	for (int i = 0; i < d.n; i++) {
		struct dump_task *x = &d.v[i];
		int nf;

		if (py_tasks__name(pt, &x->ti, x->name, sizeof(x->name)))
			snprintf(x->name, sizeof(x->name), "<task 0x%llx>",
				 (unsigned long long)x->ti.addr);
		pending += x->ti.state == PY_TASK_PENDING;
		if (x->ti.state != PY_TASK_PENDING)
			continue;
		nf = py_tasks__coro_stack(pt, x->ti.coro, frames,
					  MAX_CORO_FRAMES, &x->awaits);
		if (!x->awaits)
			x->awaits = x->ti.waiter;
		x->awaits_task = find_task(&d, x->awaits);
		edge_add(&d, i, x->awaits_task);
		/* gather() and TaskGroup record their awaiters (3.14+) */
		nb = py_tasks__awaited_by(pt, x->ti.addr, by, MAX_AWAITERS);
		for (int j = 0; j < nb; j++)
			edge_add(&d, find_task(&d, by[j]), i);
		if (nf <= 0)
			continue;
		x->frames = calloc(nf, sizeof(*x->frames));
		if (!x->frames)
			continue;
		for (int j = 0; j < nf; j++)
			pysym__resolve(sym, &frames[j], &x->frames[j]);
		x->nframes = nf;
	}
	/* awaits_task holds indexes: sort by a copy of the order instead */
	int *order = calloc(d.n + 1, sizeof(int));
	struct dump sorted = { .n = d.n, .cap = d.n };
	sorted.v = calloc(d.n + 1, sizeof(*sorted.v));
	if (!order || !sorted.v) {
		free(order);
		free(sorted.v);
		fprintf(stderr, "asyncprobe: out of memory\n");
		goto cleanup;
	}
	memcpy(sorted.v, d.v, d.n * sizeof(*d.v));
	qsort(sorted.v, sorted.n, sizeof(*sorted.v), cmp_order);
	for (int i = 0; i < sorted.n; i++)
		order[find_task(&d, sorted.v[i].ti.addr)] = i;
	for (int i = 0; i < sorted.n; i++)
		if (sorted.v[i].awaits_task >= 0)
			sorted.v[i].awaits_task =
				order[sorted.v[i].awaits_task];
	sorted.e = d.e;
	sorted.ne = d.ne;
	for (int i = 0; i < d.ne; i++) {
		sorted.e[i].from = order[d.e[i].from];
		sorted.e[i].to = order[d.e[i].to];
	}
	if (o->format == AP_FMT_JSON)
		print_json(&t, &sorted, pt, truncated, pending);
	else
		print_text(&t, &sorted, pt, truncated, pending);
	free(order);
	free(sorted.v);
	ret = 0;
cleanup:
	for (int i = 0; i < d.n; i++)
		free(d.v[i].frames);
	free(d.v);
	free(d.e);
	pysym__free(sym);
	py_tasks__free(pt);
	return ret;
}
