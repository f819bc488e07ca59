/* SPDX-License-Identifier: MIT */
/*
 * Task churn, lifetimes, creation sites and leaks of a target's asyncio
 * tasks.  Nothing is hooked per task: the automatic-name counter and the
 * task registry are read from the target's memory every tick, and the
 * creation sites come from the loop's CPU samples.
 */
#ifndef CHURN_H
#define CHURN_H

#include <stdint.h>
#include "asyncprobe.h"
#include "options.h"
#include "output.h"
#include "pysym.h"
#include "pytarget.h"

struct churn;
struct py_tasks;

struct churn *churn__new(const struct ap_options *o, struct py_target *t,
			 struct py_symbolizer *sym);
void churn__free(struct churn *ch);

/* Read the counter, walk the registry when due, report churn episodes. */
void churn__tick(struct churn *ch, double now);

/* A CPU sample of a loop thread (innermost frame first): counts toward a
 * creation site when it caught create_task / ensure_future. */
void churn__sample(struct churn *ch, const struct ap_frame *frames, int n);

/* The thread running event loop object @loop (one of @nloops the tasks
 * belong to), 0 if not known: asked at the end, for each of them. */
typedef uint32_t (*churn_loop_tid)(void *ctx, uint64_t loop, int nloops);
void churn__set_loop_tid(struct churn *ch, churn_loop_tid fn, void *ctx);

/* Tell @hy of every walk of the registry (hygiene.h). */
struct hygiene;
void churn__set_hygiene(struct churn *ch, struct hygiene *hy);

/* The target's task registry reader; NULL until asyncio is imported. */
struct py_tasks *churn__tasks(const struct churn *ch);

/* The counts as of the last tick; -1 while the target has no asyncio. */
struct ap_task_counts {
	uint64_t created, finished, alive;
};
int churn__counts(const struct churn *ch, struct ap_task_counts *out);

/* Stop reading the target (it exec'd): what was counted stays. */
void churn__freeze(struct churn *ch);

/* At the end: report what is still going on (churn, leak) and fill @s;
 * @s's arrays live until churn__free. */
void churn__finish(struct churn *ch, double now, struct ap_task_summary *s);

#endif
