/* SPDX-License-Identifier: MIT */
/* Findings as text lines or JSON lines (the output contract). */
#ifndef OUTPUT_H
#define OUTPUT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include "fdinfo.h"
#include "options.h"
#include "pysym.h"

struct ap_stack_out {
	int n;
	int truncated;
	struct py_frame_info *frames; /* innermost first */
};

/* One of the distinct stacks a stall's samples caught, and its share of
 * the sampled time (records only: flame graphs weight each). */
struct ap_wstack {
	double share;
	struct ap_stack_out stack;
};

struct ap_finding {
	const char *event; /* "loop", "stall", "blocking_syscall" */
	pid_t pid;
	uint32_t tid;
	/* the same in the target's own PID namespace; 0 when not different */
	pid_t ns_pid;
	uint32_t ns_tid;
	double ts; /* CLOCK_MONOTONIC seconds */
	double duration_ms;
	struct ap_stack_out stack;
	/* stall: timed by the loop's own clock, its end about a timer tick late
	 * (the selector hook was detached: selhook.h) */
	int clocked;
	/* stall: how the stack was chosen */
	int samples;
	double stack_share;
	const struct ap_wstack *wstacks; /* NULL: not kept */
	int nwstacks;
	double gc_share; /* of the sampled time, in the garbage collector */
	/* collections per generation that ended during it (process-wide;
	 * read every tick, so one started up to a tick before may count) */
	int gc_known;
	uint64_t gc_collections[3];
	/* timed by USDT: the pause inside it, and which generations ran */
	int gc_timed;
	double gc_pause_ms;
	uint32_t gc_gens; /* a mask */
	/* blocking_syscall */
	const char *syscall;
	int syscall_nr;
	int fd;			   /* -1: none */
	const struct fd_desc *fdd; /* NULL: unknown */
	int in_progress;	   /* still going on when reported */
	/* a wait for the GIL: who held it, when known (tid 0: unknown) */
	const char *task; /* the asyncio task running, when known (3.14+) */
	int gil_wait;
	uint32_t gil_holder_tid;
	const char *gil_holder_name;
};

struct ap_loop_summary {
	uint32_t tid;
	uint32_t ns_tid; /* 0: same as tid */
	uint64_t iterations;
	double busy_ms, idle_ms, max_iteration_ms;
	uint64_t stalls, blocking_syscalls;
	double gil_wait_ms; /* all waits for the GIL, short ones too */
	uint64_t gil_waits;
	double gc_ms; /* garbage collection time: timed, else sampled */
	int gc_timed; /* by the gc USDT probes: then the pauses too */
	uint64_t gc_pauses;
	double gc_pause_max_ms;
	uint64_t gc_gen_pauses[3];
	uint64_t cpu_samples;
};

/* A place in the code: where tasks are created, or what leaked tasks run. */
struct ap_site {
	struct py_frame_info where;
	uint64_t count; /* creation: samples; leak: tasks alive at the end */
	double share;	/* creation: of the samples in create_task */
	int64_t growth; /* leak: alive at the end minus at the start */
};

/* Task lifetimes: share of tasks done within each bound (-1: unknown),
 * estimated from cohorts of automatically named tasks. */
struct ap_lifetimes {
	double lt_1ms, lt_1s, lt_10s;
	uint64_t observed; /* tasks in the cohorts */
};

struct ap_churn {
	pid_t pid, ns_pid;
	double ts, start_ts, duration_s;
	uint64_t created;		   /* during the episode */
	double rate, peak_rate, threshold; /* tasks created per second */
	int in_progress;
	struct ap_lifetimes life;
	int nsites;
	const struct ap_site *sites;
	uint64_t site_samples; /* samples that caught a create_task */
};

struct ap_leak {
	pid_t pid, ns_pid;
	double ts, start_ts;
	uint64_t alive_start, alive_end;
	double growth_per_s;
	int nsites;
	const struct ap_site *sites;
};

/* An asyncio hygiene finding (hygiene.h). */
struct ap_hygiene {
	const char *event; /* one of ap_hygiene_names */
	pid_t pid, ns_pid;
	double ts;
	/* cancel_ignored: the task, how long it has run on since asked;
	 * long_await: the task, how long it has been suspended (pending_s),
	 * its coroutine below */
	const char *task; /* its name; NULL: unknown */
	int cancels;	  /* Task.cancelling() */
	double pending_s, threshold_s;
	const char *awaits;	   /* what it awaits now; NULL: unknown */
	struct ap_stack_out stack; /* where it is now, innermost first */
	/* never_awaited: the coroutine (function, where defined), how many
	 * times so far at this place; stack: where it was dropped */
	const char *coroutine, *coro_file;
	int coro_line;
	uint64_t count;
	/* task_destroyed_pending, exception_never_retrieved: "Task" or
	 * "Future" (NULL: not found), the exception's type (NULL: unknown);
	 * task, coroutine (where defined); stack: where it was finalized */
	const char *future, *exception;
	/* fd_growth: descriptors of one kind, since start_ts */
	const char *fd_kind;
	double start_ts;
	int64_t fds_start, fds_end;
	double growth_per_s;
};

/* Pending tasks of one event loop (by its loop object). */
struct ap_task_loop {
	uint64_t loop; /* the loop object's address in the target */
	uint32_t tid;  /* the thread running it; 0: not known */
	uint64_t alive, alive_max;
};

struct ap_task_summary {
	int known; /* 0: asyncio not imported, or no layout for this Python */
	uint64_t created, finished, alive, alive_max;
	double peak_rate;	/* tasks created per second, busiest second */
	const char *counted_by; /* what tasks_created comes from */
	int truncated;		/* a walk stopped at its bound */
	struct ap_lifetimes life;
	int nsites;
	const struct ap_site *sites;
	uint64_t site_samples;
	int nloops;
	const struct ap_task_loop *loops;
};

struct ap_summary {
	pid_t pid;
	pid_t ns_pid; /* 0: same as pid */
	double ts, start_ts, end_ts;
	int nloops;
	const struct ap_loop_summary *loops;
	uint64_t stalls, blocking_syscalls, events_lost;
	uint64_t in_progress; /* findings still going on at the end */
	/* selector entries no program saw (iterations closed at the wait)
	 * and wake-ups taken for the loop wait's that were not */
	uint64_t entries_unseen, stale_wakeups;
	/* the share of the run the selector hook was attached (selhook.h):
	 * iterations are those it timed */
	double selector_hook_share;
	const char *python; /* "3.11.2" */
	const struct ap_task_summary *tasks;
	int gc_known; /* collections per generation during the run */
	uint64_t gc_collections[3];
	/* asyncio hygiene findings by kind (every unawaited coroutine) */
	int nhygiene;
	const char *const *hygiene_names;
	const uint64_t *hygiene;
};

/* A newly found loop thread: event "loop", with its stack. */
void output__loop(FILE *f, enum ap_format fmt, const struct ap_finding *x);
void output__finding(FILE *f, enum ap_format fmt, const struct ap_finding *x);
/* Records: the loops' counters so far (JSON only, every few seconds). */
void output__loop_stats(FILE *f, pid_t pid, pid_t ns_pid, double ts,
			double start_ts, const struct ap_loop_summary *ls,
			int n);

void output__summary(FILE *f, enum ap_format fmt, const struct ap_summary *s);
void output__churn(FILE *f, enum ap_format fmt, const struct ap_churn *x);
void output__leak(FILE *f, enum ap_format fmt, const struct ap_leak *x);
void output__hygiene(FILE *f, enum ap_format fmt, const struct ap_hygiene *x);

/* "file.py" shortened to its last two path components (text output) */
const char *output__short_path(const char *path);

/* Interpreter and third-party code (the standard library, site-packages,
 * frozen modules): the user's own line is elsewhere. */
bool output__is_library(const char *file);

/* The frame to blame in a stack (innermost first): the innermost of the
 * application's own code, else the innermost; -1 for no frames. */
int output__app_frame(const struct py_frame_info *frames, int n);

#endif
