/* SPDX-License-Identifier: MIT */
/*
 * One watched target: its BPF programs, loop threads, findings (printed
 * as they come) and what the exporter reads at scrape time.  The run loop
 * (session.c) drives any number of them.
 */
#ifndef COLLECTOR_H
#define COLLECTOR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "metrics.h"
#include "options.h"

#define AP_TICK_MS 250 /* collector__tick's period */

struct collector;

/* Attach to @pid: read its layout, load and attach the BPF programs, find
 * the loops asleep now.  NULL with the reason in @err.  The caller has
 * checked the capabilities. */
struct collector *collector__new(const struct ap_options *o, pid_t pid,
				 char *err, size_t errlen);

/* The ring buffer's epoll fd, and a pidfd that is readable when the
 * target exits (-1 where pidfd_open is missing: see collector__gone). */
int collector__ring_fd(const struct collector *c);
int collector__pidfd(const struct collector *c);

/* Read what the BPF side queued (findings are printed). */
void collector__consume(struct collector *c);

/* Every tick (@ticks since the start): hung loops, task counts, GC. */
void collector__tick(struct collector *c, unsigned long ticks);

/* The target has exited (for kernels without pidfd). */
bool collector__gone(const struct collector *c);

/* Has the target run execve (its Python program is gone)? */
bool collector__execd(const struct collector *c);

/* Stop the BPF side, report what is still going on, print the summary. */
void collector__finish(struct collector *c);

void collector__free(struct collector *c);

pid_t collector__pid(const struct collector *c);
const char *collector__python(const struct collector *c);
const char *collector__object(const struct collector *c); /* its binary */
const char *collector__hooks(const struct collector *c);  /* what is used */

/* Findings so far: stalls and blocking syscalls. */
void collector__counts(const struct collector *c, uint64_t *stalls,
		       uint64_t *blocks);

/* A finding, for the live view. */
struct ap_recent {
	double ts; /* CLOCK_MONOTONIC seconds it ended */
	double ms;
	int stall;	 /* else a blocking syscall */
	char what[48];	 /* blocking: syscall (and "GIL") */
	char where[384]; /* the blamed frame: function (file:line) */
};

/* The latest findings, newest first: up to @max into @out; the count. */
int collector__recent(const struct collector *c, struct ap_recent *out,
		      int max);

/* Fill @m for a scrape; its pointers live until the next call or free. */
void collector__metrics(struct collector *c, struct ap_target_metrics *m);

#endif
