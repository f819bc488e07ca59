/* SPDX-License-Identifier: MIT */
#ifndef OPTIONS_H
#define OPTIONS_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

enum ap_format {
	AP_FMT_TEXT = 0,
	AP_FMT_JSON = 1,
	/* reports only */
	AP_FMT_FOLDED = 2,
	AP_FMT_SPEEDSCOPE = 3,
	AP_FMT_PPROF = 4,
	AP_FMT_HTML = 5,
};

enum ap_command {
	AP_CMD_WATCH = 0,  /* find stalls, blocking syscalls, task churn */
	AP_CMD_TASKS = 1,  /* one-shot dump of the target's tasks */
	AP_CMD_RECORD = 2, /* watch into a record file */
	AP_CMD_REPORT = 3, /* render a record file */
	AP_CMD_TOP = 4,	   /* a live view, refreshed every second */
	AP_CMD_CHECK = 5,  /* what this kernel supports */
};

#define AP_MAX_PIDS 64 /* -p given this many times at most */

struct ap_options {
	enum ap_command command;
	pid_t pid; /* the first -p */
	pid_t pids[AP_MAX_PIDS];
	int npids;
	const char *listen; /* --listen [ADDR:]PORT: serve /metrics */
	const char *match;  /* --match REGEX: watch matching processes */
	double rescan_s;    /* how often --match looks for new ones */
	int top_sites;	    /* call sites named per metric and target */
	const char *output; /* -o FILE: record / report output */
	const char *record; /* report: the record file to read */
	const char *title;  /* report: what it is of (NULL: the file) */
	int partial;	    /* report: what a damaged file holds, anyway */
	FILE *out;	    /* where findings go: stdout, or the record */
	int argc;	    /* as given, for the record's header */
	char **argv;
	double duration_s; /* 0: until interrupted or the target exits */
	double stall_ms;
	double syscall_ms;
	double sample_ms; /* CPU time between stack samples of a loop; 0:
			   * sampled on the timer tick */
	enum ap_format format;
	double churn_threshold;	   /* tasks created per second that are churn */
	double cancel_threshold_s; /* a task cancelled and still pending */
	double await_threshold_s;  /* a task suspended in one await; 0: off */
	const char *hooks;	   /* NULL: the cheapest the kernel allows */
	bool selector_always; /* never detach the selector hook (selhook.h) */
	int verbose;
};

enum ap_parse_result {
	AP_PARSE_OK = 0,
	AP_PARSE_EXIT = 1,  /* --help or --version printed; exit 0 */
	AP_PARSE_ERROR = 2, /* message printed to @err; exit 2 */
};

/* Parse argv into @o (defaults first). Messages go to @out / @err. */
enum ap_parse_result args__parse(int argc, char **argv, struct ap_options *o,
				 FILE *out, FILE *err);

#endif
