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

#define MAX_CANCELLED 4096 /* tasks asked to cancel, followed */
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
};

const char *const ap_fd_kind_names[AP_FD_KINDS] = {
	[AP_FD_TCP] = "tcp",   [AP_FD_UDP] = "udp",
	[AP_FD_UNIX] = "unix", [AP_FD_SOCKET] = "socket",
	[AP_FD_PIPE] = "pipe", [AP_FD_FILE] = "file",
	[AP_FD_ANON] = "anon", [AP_FD_OTHER] = "other",
};

/* A pending task asked to cancel, first seen so at @since (a lower bound
 * for one asked before the run). */
struct cancelled {
	struct py_task_info ti;
	double since;
	bool reported;
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
	/* this walk's and the last walk's tasks asked to cancel (by address) */
	struct cancelled *cur, *prev;
	size_t ncur, nprev;
	bool fd_gone; /* /proc/PID/fd unreadable: stop */
	double next_fd;
	int readings;
	int64_t fds[AP_FD_KINDS];
	int64_t base[AP_FD_KINDS]; /* count growth is measured from */
	double base_ts[AP_FD_KINDS];
	struct unawaited sites[MAX_UNAWAITED];
	int nsites;
	uint64_t skipped[AP_HY_KINDS]; /* counted by the BPF side only */
};

struct hygiene *hygiene__new(const struct ap_options *o, struct py_target *t,
			     struct py_symbolizer *sym)
{
	struct hygiene *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->o = o;
	h->t = t;
	h->sym = sym;
	h->cur = calloc(MAX_CANCELLED, sizeof(*h->cur));
	h->prev = calloc(MAX_CANCELLED, sizeof(*h->prev));
	if (!h->cur || !h->prev) {
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
	free(h->cur);
	free(h->prev);
	free(h);
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

/* --- cancel_ignored ------------------------------------------------ */

void hygiene__walk_begin(struct hygiene *h)
{
	if (h)
		h->ncur = 0;
}

void hygiene__task(struct hygiene *h, const struct py_task_info *ti)
{
	if (!h || ti->state != PY_TASK_PENDING || ti->cancels <= 0 ||
	    h->ncur == MAX_CANCELLED)
		return;
	h->cur[h->ncur++] = (struct cancelled){ .ti = *ti };
}

static int cmp_addr(const void *a, const void *b)
{
	uint64_t x = ((const struct cancelled *)a)->ti.addr;
	uint64_t y = ((const struct cancelled *)b)->ti.addr;

	return x < y ? -1 : x > y;
}

/* Say that @c ignored its cancellation: where it runs now. */
static void cancel_report(struct hygiene *h, struct py_tasks *pt,
			  const struct cancelled *c, double now)
{
	static struct py_frame_info info[CHAIN_FRAMES];
	struct ap_frame frames[CHAIN_FRAMES];
	char name[PYSYM_NAME_MAX], type[64];
	uint64_t awaits = 0;
	struct ap_hygiene x = {
		.event = ap_hygiene_names[AP_HY_CANCEL_IGNORED],
		.pid = h->t->pid,
		.ns_pid = h->t->ns_pid != h->t->pid ? h->t->ns_pid : 0,
		.ts = now,
		.cancels = c->ti.cancels,
		.pending_s = now - c->since,
		.threshold_s = h->o->cancel_threshold_s,
		.stack.frames = info,
	};
	int n = py_tasks__coro_stack(pt, c->ti.coro, frames, CHAIN_FRAMES,
				     &awaits);

	/* the chain comes outermost first; findings put the innermost first */
	for (int i = 0; i < n; i++)
		pysym__resolve(h->sym, &frames[n - 1 - i], &info[i]);
	x.stack.n = n > 0 ? n : 0;
	if (!awaits)
		awaits = c->ti.waiter;
	if (awaits && !py_tasks__type_name(pt, awaits, type, sizeof(type)))
		x.awaits = type;
	if (!py_tasks__name(pt, &c->ti, name, sizeof(name)))
		x.task = name;
	output__hygiene(h->o->out, h->o->format, &x);
	h->findings[AP_HY_CANCEL_IGNORED]++;
}

void hygiene__walk_end(struct hygiene *h, struct py_tasks *pt, double now)
{
	struct cancelled *swap;

	if (!h)
		return;
	if (h->ncur)
		qsort(h->cur, h->ncur, sizeof(*h->cur), cmp_addr);
	for (size_t i = 0; i < h->ncur; i++) {
		struct cancelled *c = &h->cur[i];
		struct cancelled *was =
			h->nprev ? bsearch(c, h->prev, h->nprev,
					   sizeof(*h->prev), cmp_addr)
				 : NULL;

		/* the same task (its coroutine too: an address is reused) */
		if (was && was->ti.coro == c->ti.coro) {
			c->since = was->since;
			c->reported = was->reported;
		} else {
			c->since = now;
		}
		if (c->reported || now - c->since < h->o->cancel_threshold_s)
			continue;
		c->reported = true;
		cancel_report(h, pt, c, now);
	}
	swap = h->prev;
	h->prev = h->cur;
	h->nprev = h->ncur;
	h->cur = swap;
	h->ncur = 0;
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
