// SPDX-License-Identifier: MIT
/* asyncio hygiene findings from /proc and task walks (see hygiene.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/xattr.h>
#include "hygiene.h"
#include "output.h"
#include "watch.h"

#define MAX_CANCELLED 4096 /* tasks asked to cancel, followed */
#define MAX_AWAITING 32768 /* tasks suspended on a future, followed */
#define AWAIT_ARM_S 1.0	   /* suspended this long before a watch is spent */
#define WATCH_RETRY_S 2.0  /* after no watchpoint was free */
#define CHAIN_FRAMES 32	   /* coroutines shown of a task's chain */
#define MAX_UNAWAITED 256  /* places of unawaited coroutines counted apart */
#define FD_PERIOD_S 2.0	   /* descriptors counted this often */
#define FD_MAX 65536	   /* descriptors looked at per count */
#define FD_MIN_GROWTH 50   /* of one kind, to call it growth... */
#define FD_MIN_SPAN_S 6.0  /* ...over this long at least */
#define FD_MIN_READINGS 3

const char *const ap_hygiene_names[AP_HY_KINDS] = {
	[AP_HY_FD_GROWTH] = "fd_growth",
	[AP_HY_CANCEL_IGNORED] = "cancel_ignored",
	[AP_HY_NEVER_AWAITED] = "never_awaited",
	[AP_HY_TASK_DESTROYED_PENDING] = "task_destroyed_pending",
	[AP_HY_EXCEPTION_NEVER_RETRIEVED] = "exception_never_retrieved",
	[AP_HY_LONG_AWAIT] = "long_await",
};

const char *const ap_fd_kind_names[AP_FD_KINDS] = {
	[AP_FD_TCP] = "tcp",   [AP_FD_UDP] = "udp",
	[AP_FD_UNIX] = "unix", [AP_FD_SOCKET] = "socket",
	[AP_FD_PIPE] = "pipe", [AP_FD_FILE] = "file",
	[AP_FD_ANON] = "anon", [AP_FD_OTHER] = "other",
};

/*
 * A pending task followed from walk to walk: asked to cancel, or suspended
 * on a future.  @since: first seen so (a lower bound for one so before
 * the run); @watched: when its watchpoint was armed (0: not watched).
 */
struct followed {
	struct py_task_info ti;
	double since, watched;
	bool reported, unwatchable;
};

/* This walk's and the last walk's tasks of one kind, by address. */
struct follow_set {
	struct followed *cur, *prev;
	size_t ncur, nprev, max;
};

/* A place coroutines are dropped unawaited at: which, where, how often. */
struct unawaited {
	uint64_t code;	    /* the coroutine's */
	struct ap_frame at; /* the innermost frame that dropped it */
	uint64_t count;
};

struct hygiene {
	const struct ap_options *o;
	struct py_target *t;
	struct py_symbolizer *sym;
	uint64_t findings[AP_HY_KINDS];
	struct follow_set cancelled; /* asked to cancel */
	struct follow_set awaiting;  /* suspended on a future */
	struct watch *watch;	     /* NULL: long awaits not looked for */
	long waiter_off;	     /* the task's future waited on */
	double watch_retry;	     /* none free: not tried again before */
	bool fd_gone;		     /* /proc/PID/fd unreadable: stop */
	double next_fd;
	int readings;
	int64_t fds[AP_FD_KINDS];
	int64_t base[AP_FD_KINDS]; /* count growth is measured from */
	double base_ts[AP_FD_KINDS];
	struct unawaited sites[MAX_UNAWAITED];
	int nsites;
	uint64_t skipped[AP_HY_KINDS]; /* counted by the BPF side only */
};

static int follow_init(struct follow_set *fs, size_t max)
{
	/* untouched pages of these cost no memory */
	fs->cur = calloc(max, sizeof(*fs->cur));
	fs->prev = calloc(max, sizeof(*fs->prev));
	fs->max = max;
	return fs->cur && fs->prev ? 0 : -ENOMEM;
}

static void follow_free(struct follow_set *fs)
{
	free(fs->cur);
	free(fs->prev);
}

struct hygiene *hygiene__new(const struct ap_options *o, struct py_target *t,
			     struct py_symbolizer *sym)
{
	struct hygiene *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->o = o;
	h->t = t;
	h->sym = sym;
	if (follow_init(&h->cancelled, MAX_CANCELLED)) {
		hygiene__free(h);
		return NULL;
	}
	for (int k = 0; k < AP_FD_KINDS; k++)
		h->fds[k] = -1;
	return h;
}

void hygiene__free(struct hygiene *h)
{
	if (!h)
		return;
	follow_free(&h->cancelled);
	follow_free(&h->awaiting);
	free(h);
}

void hygiene__set_watch(struct hygiene *h, struct watch *w)
{
	const struct py_asyncio_layout *al;

	if (!h || !w || h->watch)
		return;
	al = py_asyncio__layout(h->t->major, h->t->minor);
	if (!al || al->task_fut_waiter <= 0 || al->task_fut_waiter % 8 ||
	    follow_init(&h->awaiting, MAX_AWAITING))
		return;
	h->watch = w;
	h->waiter_off = al->task_fut_waiter;
}

void hygiene__counts(const struct hygiene *h, uint64_t *findings, int64_t *fds)
{
	for (int k = 0; k < AP_HY_KINDS; k++)
		findings[k] = h ? h->findings[k] : 0;
	for (int k = 0; h && k < AP_HY_KINDS; k++)
		findings[k] += h->skipped[k];
	for (int k = 0; k < AP_FD_KINDS; k++)
		fds[k] = h ? h->fds[k] : -1;
}

/* --- cancel_ignored, long_await: tasks followed over walks ----------- */

void hygiene__walk_begin(struct hygiene *h)
{
	if (h)
		h->cancelled.ncur = h->awaiting.ncur = 0;
}

static void follow_add(struct follow_set *fs, const struct py_task_info *ti)
{
	if (fs->ncur < fs->max)
		fs->cur[fs->ncur++] = (struct followed){ .ti = *ti };
}

void hygiene__task(struct hygiene *h, const struct py_task_info *ti)
{
	if (!h || ti->state != PY_TASK_PENDING)
		return;
	if (ti->cancels > 0)
		follow_add(&h->cancelled, ti);
	if (ti->waiter && h->watch)
		follow_add(&h->awaiting, ti);
}

static int cmp_addr(const void *a, const void *b)
{
	uint64_t x = ((const struct followed *)a)->ti.addr;
	uint64_t y = ((const struct followed *)b)->ti.addr;

	return x < y ? -1 : x > y;
}

static struct followed *follow_find(struct followed *v, size_t n, uint64_t addr)
{
	struct followed key = { .ti.addr = addr };

	return n ? bsearch(&key, v, n, sizeof(*v), cmp_addr) : NULL;
}

/* This walk's tasks in order, each with what the last walk knew of it
 * when it is the same task in the same state: @same says what that is. */
static void follow_carry(struct follow_set *fs, double now,
			 bool (*same)(const struct followed *,
				      const struct followed *))
{
	if (fs->ncur)
		qsort(fs->cur, fs->ncur, sizeof(*fs->cur), cmp_addr);
	for (size_t i = 0; i < fs->ncur; i++) {
		struct followed *f = &fs->cur[i];
		struct followed *was =
			follow_find(fs->prev, fs->nprev, f->ti.addr);

		if (was && same(was, f)) {
			f->since = was->since;
			f->watched = was->watched;
			f->reported = was->reported;
			f->unwatchable = was->unwatchable;
		} else {
			f->since = now;
		}
	}
}

static void follow_swap(struct follow_set *fs)
{
	struct followed *swap = fs->prev;

	fs->prev = fs->cur;
	fs->nprev = fs->ncur;
	fs->cur = swap;
	fs->ncur = 0;
}

/* Say where task @f is now: @kind, how long it has been so. */
static void task_report(struct hygiene *h, struct py_tasks *pt,
			enum ap_hygiene_kind kind, const struct followed *f,
			double threshold_s, double now)
{
	static struct py_frame_info info[CHAIN_FRAMES];
	struct ap_frame frames[CHAIN_FRAMES];
	char name[PYSYM_NAME_MAX], type[64];
	struct py_frame_info coro;
	uint64_t awaits = 0;
	struct ap_hygiene x = {
		.event = ap_hygiene_names[kind],
		.pid = h->t->pid,
		.ns_pid = h->t->ns_pid != h->t->pid ? h->t->ns_pid : 0,
		.ts = now,
		.cancels = f->ti.cancels,
		.pending_s = now - f->since,
		.threshold_s = threshold_s,
		.stack.frames = info,
	};
	int n = py_tasks__coro_stack(pt, f->ti.coro, frames, CHAIN_FRAMES,
				     &awaits);

	/* the chain comes outermost first; findings put the innermost first */
	for (int i = 0; i < n; i++)
		pysym__resolve(h->sym, &frames[n - 1 - i], &info[i]);
	x.stack.n = n > 0 ? n : 0;
	if (!awaits)
		awaits = f->ti.waiter;
	if (awaits && !py_tasks__type_name(pt, awaits, type, sizeof(type)))
		x.awaits = type;
	if (!py_tasks__name(pt, &f->ti, name, sizeof(name)))
		x.task = name;
	if (f->ti.code && !pysym__code(h->sym, f->ti.code, &coro)) {
		x.coroutine = coro.function;
		x.coro_file = coro.file;
		x.coro_line = coro.line;
	}
	output__hygiene(h->o->out, h->o->format, &x);
	h->findings[kind]++;
}

/* The same task, still asked to cancel (its coroutine too: an address
 * is reused). */
static bool same_cancelled(const struct followed *was, const struct followed *f)
{
	return was->ti.coro == f->ti.coro;
}

static void cancelled_end(struct hygiene *h, struct py_tasks *pt, double now)
{
	struct follow_set *fs = &h->cancelled;

	follow_carry(fs, now, same_cancelled);
	for (size_t i = 0; i < fs->ncur; i++) {
		struct followed *f = &fs->cur[i];

		if (f->reported || now - f->since < h->o->cancel_threshold_s)
			continue;
		f->reported = true;
		task_report(h, pt, AP_HY_CANCEL_IGNORED, f,
			    h->o->cancel_threshold_s, now);
	}
	follow_swap(fs);
}

/* The same task, seen suspended on the same future.  The future can be a
 * new one at the address of the last (a task that woke and awaits again
 * in a loop): the watch tells. */
static bool same_await(const struct followed *was, const struct followed *f)
{
	return was->ti.coro == f->ti.coro && was->ti.waiter == f->ti.waiter;
}

/* The word of task @f that it writes when it wakes. */
static uint64_t waiter_word(const struct hygiene *h, const struct followed *f)
{
	return f->ti.addr + h->waiter_off;
}

/*
 * Long awaits.  A task's "future waited on" word is written when it wakes
 * (cleared) and when it suspends again: a task whose word is not written
 * for --await-threshold did not run for that long.  Watchpoints are few:
 * the tasks suspended longest get them, from AWAIT_ARM_S on; a woken one
 * gives its watch up.
 */
static void awaiting_end(struct hygiene *h, struct py_tasks *pt, double now)
{
	struct follow_set *fs = &h->awaiting;
	double thr = h->o->await_threshold_s;

	follow_carry(fs, now, same_await);
	/* watches of tasks gone, or no longer suspended on that future */
	for (size_t i = 0; i < fs->nprev; i++) {
		struct followed *was = &fs->prev[i];
		struct followed *f;

		if (!was->watched)
			continue;
		f = follow_find(fs->cur, fs->ncur, was->ti.addr);
		if (!f || !f->watched)
			watch__disarm(h->watch, waiter_word(h, was));
	}
	for (size_t i = 0; i < fs->ncur; i++) {
		struct followed *f = &fs->cur[i];
		bool woke;

		if (!f->watched)
			continue;
		woke = watch__hits(h->watch, waiter_word(h, f)) != 0;
		if (!woke && now - f->watched < thr)
			continue;
		watch__disarm(h->watch, waiter_word(h, f));
		f->watched = 0;
		if (woke) {
			/* it ran: the future at that address is a new one */
			f->since = now;
			f->reported = false;
		} else {
			f->reported = true;
			task_report(h, pt, AP_HY_LONG_AWAIT, f, thr, now);
		}
	}
	while (now >= h->watch_retry && watch__armed(h->watch) < AP_WATCH_MAX) {
		struct followed *best = NULL;
		int err;

		for (size_t i = 0; i < fs->ncur; i++) {
			struct followed *f = &fs->cur[i];

			if (!f->watched && !f->reported && !f->unwatchable &&
			    now - f->since >= AWAIT_ARM_S &&
			    (!best || f->since < best->since))
				best = f;
		}
		if (!best)
			break;
		err = watch__arm(h->watch, waiter_word(h, best));
		if (err == -ENOSPC) {
			/* the CPUs' are taken (a debugger, another asyncprobe):
			 * a while later */
			h->watch_retry = now + WATCH_RETRY_S;
			break;
		}
		if (err == -EINVAL) {
			best->unwatchable = true; /* not a task's word */
			continue;
		}
		if (err) {
			fprintf(stderr,
				"asyncprobe: long awaits are not reported: "
				"cannot set a hardware watchpoint (%s)\n",
				strerror(-err));
			for (size_t i = 0; i < fs->ncur; i++)
				if (fs->cur[i].watched)
					watch__disarm(
						h->watch,
						waiter_word(h, &fs->cur[i]));
			h->watch = NULL;
			break;
		}
		best->watched = now;
	}
	follow_swap(fs);
}

void hygiene__walk_end(struct hygiene *h, struct py_tasks *pt, double now)
{
	if (!h)
		return;
	cancelled_end(h, pt, now);
	if (h->watch)
		awaiting_end(h, pt, now);
}

/* --- never_awaited ------------------------------------------------- */

void hygiene__skipped(struct hygiene *h, enum ap_hygiene_kind kind, uint64_t n)
{
	if (h && kind < AP_HY_KINDS)
		h->skipped[kind] = n;
}

static bool power_of_10(uint64_t n)
{
	while (n >= 10 && n % 10 == 0)
		n /= 10;
	return n == 1;
}

void hygiene__unawaited(struct hygiene *h, uint64_t code,
			const struct ap_frame *frames, int n, double ts)
{
	static struct py_frame_info info[AP_MAX_FRAMES];
	struct py_frame_info coro;
	struct ap_frame at = n > 0 ? frames[0] : (struct ap_frame){ 0 };
	struct unawaited *u = NULL;
	struct ap_hygiene x = {
		.event = ap_hygiene_names[AP_HY_NEVER_AWAITED],
		.pid = h->t->pid,
		.ns_pid = h->t->ns_pid != h->t->pid ? h->t->ns_pid : 0,
		.ts = ts,
		.stack.frames = info,
	};

	h->findings[AP_HY_NEVER_AWAITED]++;
	for (int i = 0; i < h->nsites && !u; i++)
		if (h->sites[i].code == code &&
		    h->sites[i].at.code == at.code &&
		    h->sites[i].at.instr == at.instr)
			u = &h->sites[i];
	if (!u && h->nsites < MAX_UNAWAITED) {
		u = &h->sites[h->nsites++];
		*u = (struct unawaited){ .code = code, .at = at };
	}
	/* past the bound of places: counted (the metric, the summary) only */
	if (!u)
		return;
	x.count = ++u->count;
	if (!power_of_10(x.count))
		return;
	if (!code || pysym__code(h->sym, code, &coro)) {
		snprintf(coro.function, sizeof(coro.function), "?");
	} else {
		x.coro_file = coro.file;
		x.coro_line = coro.line;
	}
	x.coroutine = coro.function;
	for (int i = 0; i < n && i < AP_MAX_FRAMES; i++)
		pysym__resolve(h->sym, &frames[i], &info[i]);
	x.stack.n = n > 0 ? n : 0;
	output__hygiene(h->o->out, h->o->format, &x);
}

/* --- task_destroyed_pending, exception_never_retrieved ---------------- */

void hygiene__finalized(struct hygiene *h, const struct ap_fin_report *r)
{
	static struct py_frame_info info[AP_MAX_FRAMES];
	struct py_frame_info coro;
	enum ap_hygiene_kind k = r->kind == AP_FIN_PENDING
					 ? AP_HY_TASK_DESTROYED_PENDING
					 : AP_HY_EXCEPTION_NEVER_RETRIEVED;
	struct ap_hygiene x = {
		.event = ap_hygiene_names[k],
		.pid = h->t->pid,
		.ns_pid = h->t->ns_pid != h->t->pid ? h->t->ns_pid : 0,
		.ts = r->ts,
		.task = r->task,
		.future = r->what == 2	 ? "Task"
			  : r->what == 1 ? "Future"
					 : NULL,
		.exception = r->exception,
		.stack.frames = info,
	};

	h->findings[k]++;
	if (r->code && !pysym__code(h->sym, r->code, &coro)) {
		x.coroutine = coro.function;
		x.coro_file = coro.file;
		x.coro_line = coro.line;
	}
	for (int i = 0; i < r->n && i < AP_MAX_FRAMES; i++)
		pysym__resolve(h->sym, &r->frames[i], &info[i]);
	x.stack.n = r->n > 0 ? r->n : 0;
	output__hygiene(h->o->out, h->o->format, &x);
}

/* --- fd_growth ----------------------------------------------------- */

/*
 * The kind of socket @path (/proc/PID/fd/N) is, from the protocol name the
 * kernel gives as its "system.sockprotoname" attribute: per descriptor,
 * where reading /proc/PID/net/tcp would walk every socket of the target's
 * network namespace (and take each hash bucket's lock).
 */
static int sock_kind(const char *path)
{
	static const struct {
		const char *prefix;
		int kind;
	} protos[] = {
		{ "TCP", AP_FD_TCP },	{ "MPTCP", AP_FD_TCP },
		{ "UDP", AP_FD_UDP },	{ "UDPv6", AP_FD_UDP },
		{ "UNIX", AP_FD_UNIX },
	};
	char name[32];
	ssize_t len =
		getxattr(path, "system.sockprotoname", name, sizeof(name) - 1);

	if (len <= 0)
		return AP_FD_SOCKET;
	name[len] = '\0';
	for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++)
		if (!strncmp(name, protos[i].prefix, strlen(protos[i].prefix)))
			return protos[i].kind;
	return AP_FD_SOCKET;
}

/* The kind of descriptor @name of the target, whose link says @link. */
static int fd_kind(struct hygiene *h, const char *name, const char *link)
{
	char path[64];

	if (!strncmp(link, "socket:", 7)) {
		snprintf(path, sizeof(path), "/proc/%d/fd/%.20s", h->t->pid,
			 name);
		return sock_kind(path);
	}
	if (!strncmp(link, "pipe:", 5))
		return AP_FD_PIPE;
	if (!strncmp(link, "anon_inode:", 11))
		return AP_FD_ANON;
	if (link[0] == '/')
		return AP_FD_FILE;
	return AP_FD_OTHER;
}

/* Count the descriptors by kind; false when they cannot be read. */
static bool fds_count(struct hygiene *h, int64_t *n)
{
	char path[64], link[256];
	struct dirent *de;
	int seen = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", h->t->pid);
	d = opendir(path);
	if (!d)
		return false;
	memset(n, 0, AP_FD_KINDS * sizeof(*n));
	while ((de = readdir(d)) && seen < FD_MAX) {
		ssize_t len;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		len = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);
		if (len < 0)
			continue; /* closed meanwhile */
		link[len] = '\0';
		seen++;
		n[fd_kind(h, de->d_name, link)]++;
	}
	closedir(d);
	return true;
}

void hygiene__tick(struct hygiene *h, double now)
{
	int64_t n[AP_FD_KINDS];

	if (!h || h->fd_gone || now < h->next_fd)
		return;
	h->next_fd = now + FD_PERIOD_S;
	if (!fds_count(h, n)) {
		h->fd_gone = true;
		return;
	}
	h->readings++;
	for (int k = 0; k < AP_FD_KINDS; k++) {
		int64_t grown;

		/* the first count, or fewer than growth is measured from:
		 * they were closed, start again from here */
		if (h->readings == 1 || n[k] < h->base[k]) {
			h->base[k] = n[k];
			h->base_ts[k] = now;
		}
		grown = n[k] - h->base[k];
		/* still growing (a new high), by enough, for long enough */
		if (h->readings >= FD_MIN_READINGS && n[k] > h->fds[k] &&
		    grown >= FD_MIN_GROWTH && 2 * grown >= h->base[k] &&
		    now - h->base_ts[k] >= FD_MIN_SPAN_S) {
			struct ap_hygiene x = {
				.event = ap_hygiene_names[AP_HY_FD_GROWTH],
				.pid = h->t->pid,
				.ns_pid = h->t->ns_pid != h->t->pid
						  ? h->t->ns_pid
						  : 0,
				.ts = now,
				.fd_kind = ap_fd_kind_names[k],
				.start_ts = h->base_ts[k],
				.fds_start = h->base[k],
				.fds_end = n[k],
				.growth_per_s = grown / (now - h->base_ts[k]),
			};

			output__hygiene(h->o->out, h->o->format, &x);
			h->findings[AP_HY_FD_GROWTH]++;
			/* the next finding of this kind: as much again */
			h->base[k] = n[k];
			h->base_ts[k] = now;
		}
		h->fds[k] = n[k];
	}
}
