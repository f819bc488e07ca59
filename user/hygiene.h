/* SPDX-License-Identifier: MIT */
/*
 * asyncio hygiene findings: the anti-patterns the guides warn about, seen
 * from outside, without hooks.
 *   fd_growth       the target's descriptors of one kind (tcp, unix, pipe,
 *                   file...) keep growing: sessions or connections never
 *                   closed.  Counted from /proc every 2 seconds.
 *   cancel_ignored  a task asked to cancel (Task.cancelling() > 0, 3.11+)
 *                   still pending --cancel-threshold later: it swallowed
 *                   CancelledError.  From the walks of the task registry
 *                   churn.c makes anyway.
 *   long_await      a task suspended in one await (on one future, not woken
 *                   in between) for --await-threshold: from the same walks,
 *                   each such task confirmed by a hardware watchpoint on its
 *                   "future waited on" word (watch.h), which the task writes
 *                   when it wakes: a task woken and suspended again on a
 *                   new future at the same address is not mistaken for one.
 *   never_awaited   a coroutine dropped that never ran (a call without
 *                   await): every one, from a uprobe on the interpreter's
 *                   own warning (_PyErr_WarnUnawaitedCoroutine), where the
 *                   build names that function; every one counted, up to
 *                   AP_UNAWAITED_PER_S a second per CPU also placed.
 *   task_destroyed_pending, exception_never_retrieved
 *                   what _asyncio's task and future finalizers report
 *                   ("Task was destroyed but it is pending!", "Task
 *                   exception was never retrieved"): every one, from a
 *                   uprobe on the one instruction of each report that
 *                   loads its message; up to AP_FIN_PER_S a second per CPU
 *                   also described, the rest counted.
 */
#ifndef HYGIENE_H
#define HYGIENE_H

#include <stdint.h>
#include "options.h"
#include "pysym.h"
#include "pytarget.h"
#include "pytasks.h"

enum ap_hygiene_kind {
	AP_HY_FD_GROWTH,
	AP_HY_CANCEL_IGNORED,
	AP_HY_NEVER_AWAITED,
	AP_HY_TASK_DESTROYED_PENDING,
	AP_HY_EXCEPTION_NEVER_RETRIEVED,
	AP_HY_LONG_AWAIT,
	AP_HY_KINDS,
};

/* The kinds' names: the JSON event, the metric's kind label. */
extern const char *const ap_hygiene_names[AP_HY_KINDS];

/* Descriptor kinds counted (bounded: a metric label). */
enum ap_fd_kind {
	AP_FD_TCP,
	AP_FD_UDP,
	AP_FD_UNIX,
	AP_FD_SOCKET, /* another family */
	AP_FD_PIPE,
	AP_FD_FILE,
	AP_FD_ANON, /* eventfd, epoll, timerfd... */
	AP_FD_OTHER,
	AP_FD_KINDS,
};

extern const char *const ap_fd_kind_names[AP_FD_KINDS];

struct hygiene;

struct hygiene *hygiene__new(const struct ap_options *o, struct py_target *t,
			     struct py_symbolizer *sym);
void hygiene__free(struct hygiene *h);

/* Confirm long awaits with @w's watchpoints (none: not reported). */
struct watch;
void hygiene__set_watch(struct hygiene *h, struct watch *w);

/* A walk of the task registry begins, sees task @ti, ends. */
void hygiene__walk_begin(struct hygiene *h);
void hygiene__task(struct hygiene *h, const struct py_task_info *ti);
void hygiene__walk_end(struct hygiene *h, struct py_tasks *pt, double now);

/*
 * A coroutine of code object @code was dropped that never ran, at @ts;
 * @frames (innermost first) is where its last reference went.  Reported
 * the 1st, 10th, 100th... time at one place; every one is counted.
 */
void hygiene__unawaited(struct hygiene *h, uint64_t code,
			const struct ap_frame *frames, int n, double ts);

/* Findings of kind @kind the BPF side only counted (over its rate), so
 * far. */
void hygiene__skipped(struct hygiene *h, enum ap_hygiene_kind kind, uint64_t n);

/* What the _asyncio finalizers report, as the BPF side read it. */
struct ap_fin_report {
	int kind;	  /* enum ap_fin_kind */
	int what;	  /* 2 a task, 1 a future, 0 the object was not found */
	const char *task; /* its name; NULL: unknown */
	uint64_t code;	  /* its coroutine's code object; 0: unknown */
	const char *exception;	       /* the exception's type; NULL: unknown */
	const struct ap_frame *frames; /* where it was finalized */
	int n;
	double ts;
};

/* A task destroyed while pending, or an exception never retrieved. */
void hygiene__finalized(struct hygiene *h, const struct ap_fin_report *r);

/* Count the descriptors when due; report growth. */
void hygiene__tick(struct hygiene *h, double now);

/* Findings so far, by kind; descriptors by kind at the last count (-1:
 * never counted). */
void hygiene__counts(const struct hygiene *h, uint64_t *findings, int64_t *fds);

#endif
