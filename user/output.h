/* SPDX-License-Identifier: MIT */
/* Findings as text lines or JSON lines (the output contract). */
#ifndef OUTPUT_H
#define OUTPUT_H

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
	/* stall: how the stack was chosen */
	int samples;
	double stack_share;
	double gc_share; /* of the sampled time, in the garbage collector */
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
	double gc_ms; /* garbage collection time, from samples */
	uint64_t cpu_samples;
};

struct ap_summary {
	pid_t pid;
	pid_t ns_pid; /* 0: same as pid */
	double ts, start_ts, end_ts;
	int nloops;
	const struct ap_loop_summary *loops;
	uint64_t stalls, blocking_syscalls, events_lost;
	uint64_t in_progress; /* findings still going on at the end */
	const char *python;   /* "3.11.2" */
};

/* A newly found loop thread: event "loop", with its stack. */
void output__loop(FILE *f, enum ap_format fmt, const struct ap_finding *x);
void output__finding(FILE *f, enum ap_format fmt, const struct ap_finding *x);
void output__summary(FILE *f, enum ap_format fmt, const struct ap_summary *s);

/* "file.py" shortened to its last two path components (text output) */
const char *output__short_path(const char *path);

#endif
