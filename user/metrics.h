/* SPDX-License-Identifier: MIT */
/*
 * The Prometheus metrics: what each watched target hands over at scrape
 * time, and its rendering in the text exposition format (0.0.4).
 */
#ifndef METRICS_H
#define METRICS_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include "asyncprobe.h"
#include "hygiene.h"
#include "pysym.h"
#include "sitetab.h"

/* Blocking syscall durations, upper bounds in seconds (+Inf after). */
#define AP_BLOCK_BOUNDS                                                        \
	{                                                                      \
		0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,  \
			2.5, 5.0, 10.0, 30.0, 60.0                             \
	}
#define AP_BLOCK_NBOUNDS 15
#define AP_METRICS_SYSCALLS 64 /* syscalls with a duration histogram */

struct ap_loop_metrics {
	uint32_t tid;
	uint64_t busy_ns, idle_ns; /* including the iteration or wait now */
	uint64_t current_ns;	   /* the iteration running now; 0: waiting */
	uint64_t lag[AP_LAG_NBOUNDS + 1];
	uint64_t lag_sum_ns; /* busy time of the ended iterations */
	uint64_t gil_wait_ns, gil_waits;
	int gc_timed; /* the gc histograms are there (USDT) */
	uint64_t gc_hist[3][AP_GC_NBOUNDS + 1];
	uint64_t gc_ns[3];
};

struct ap_syscall_hist {
	char name[32];
	uint64_t buckets[AP_BLOCK_NBOUNDS + 1];
	uint64_t count;
	double sum;
};

struct ap_target_metrics {
	pid_t pid;
	pid_t ns_pid;	    /* in its own PID namespace */
	const char *python; /* "3.11.2" */
	const char *comm;   /* the process name */
	int nloops;
	struct ap_loop_metrics *loops;
	struct sitetab *stall_sites; /* key "", site file:function */
	struct sitetab *block_sites; /* key syscall */
	const struct ap_syscall_hist *block_hist;
	int nblock_hist;
	int tasks_known;
	uint64_t tasks_created, tasks_finished, tasks_alive;
	uint64_t events_lost;
	uint64_t hygiene[AP_HY_KINDS]; /* findings by kind */
	int64_t fds[AP_FD_KINDS];      /* open, by kind; -1: not counted */
	/* hygiene kinds looked for: long_await, the last, only if watched */
	int nhygiene;
};

/* The exporter's own figures. */
struct ap_self_metrics {
	const char *version;
	const char *libbpf;
	int targets_active, targets_failed;
	uint64_t targets_exited; /* since the start */
	uint64_t scrapes;
	double start_s;	      /* CLOCK_MONOTONIC when this scrape began */
	double process_start; /* unix time the exporter started */
};

/*
 * Write every metric family of @targets (in family order, as the format
 * wants) and the exporter's own to @out; @top call sites per target are
 * named, the rest are "other".  Returns 0, or -1 on a write error.
 */
int metrics__render(FILE *out, struct ap_target_metrics *targets, int n,
		    const struct ap_self_metrics *self, int top);

/* A Prometheus label value, escaped (\\, \", \n) into @buf. */
const char *metrics__escape(const char *s, char *buf, size_t len);

/* The call site label of a stack (innermost first): "file:function" of
 * the innermost frame of the application's own code (json, socket,
 * asyncio, site-packages... are where the time went, not what to fix),
 * else of the innermost. */
void metrics__call_site(const struct py_frame_info *frames, int n, char *buf,
			size_t len);

#endif
