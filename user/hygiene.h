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
 *   never_awaited   a coroutine dropped that never ran (a call without
 *                   await): every one, from a uprobe on the interpreter's
 *                   own warning (_PyErr_WarnUnawaitedCoroutine), where the
 *                   build names that function; every one counted, up to
 *                   AP_UNAWAITED_PER_S a second per CPU also placed.
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

/* Unawaited coroutines the BPF side only counted (over its rate), so far. */
void hygiene__unawaited_skipped(struct hygiene *h, uint64_t n);

/* Count the descriptors when due; report growth. */
void hygiene__tick(struct hygiene *h, double now);

/* Findings so far, by kind; descriptors by kind at the last count (-1:
 * never counted). */
void hygiene__counts(const struct hygiene *h, uint64_t *findings, int64_t *fds);

#endif
