/* SPDX-License-Identifier: MIT */
#ifndef HOOKS_H
#define HOOKS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "asyncprobe.h"

struct asyncprobe_bpf;
struct bpf_program;

struct hooks_config {
	pid_t tgid; /* the target */
	uint64_t stall_ns;
	uint64_t block_ns;
	struct ap_py_walk walk; /* how to walk this CPython's frames */
	uint64_t gil;		/* the GIL state's address; 0: unknown */
	uint64_t gil_size;
	uint64_t gil_holder_off;
	uint64_t gc_flag;	   /* address of gc.collecting; 0: unknown */
	uint64_t running_task_off; /* in a thread state (3.14+); 0: unknown */
	uint64_t task_name_off;	   /* in a task object */
	uint64_t coro_code_off;	   /* in a coroutine object; 0: unknown */
	struct ap_fin_layout fin;  /* what the _asyncio finalizers report */
	uint64_t sample_period_ns; /* 0: sample on the timer tick */
	bool both_samplers;	   /* load either way (asyncprobe check) */
	uint32_t ring_bytes; /* a power of 2 pages; 0: as compiled (4 MiB) */
	const char *only;    /* --hooks NAME; NULL: the cheapest that works */
	int verbose;
};

/*
 * Open, configure, load and attach the BPF programs, trying the selector
 * hooks from the cheapest (fentry) to the costliest (raw sys_enter).
 * Returns NULL with the reason on stderr; @what names what is used.
 */
struct asyncprobe_bpf *hooks__load(const struct hooks_config *cfg,
				   const char **what);

/* The selector-hook variants, cheapest first: how many, and variant @i's
 * name (for --hooks) and description. */
int hooks__nvariants(void);
const char *hooks__variant(int i, const char **what);

/*
 * Load and attach variant @i alone.  NULL when it cannot be: *step says
 * where it failed ("probe": the kernel lacks what it needs; "open",
 * "load", "attach") and *err the -errno.
 */
struct asyncprobe_bpf *hooks__try(const struct hooks_config *cfg, int i,
				  const char **step, int *err);

/* Detach and destroy what hooks__load or hooks__try returned. */
void hooks__destroy(struct asyncprobe_bpf *skel);

/*
 * The attachments of the selector hooks that cost every syscall on the
 * machine (syscall tracepoints, raw sys_enter), at most @max: the program,
 * the syscall whose tracepoint it is attached to (NULL: its own section's
 * hook) and where its link is kept (NULL while detached).
 */
int hooks__selector(struct asyncprobe_bpf *skel, struct bpf_program **progs,
		    const char **tps, struct bpf_link ***links, int max);

/* Attach @prog again where hooks__selector said (@tp). */
struct bpf_link *hooks__sel_attach(struct bpf_program *prog, const char *tp);

/* libbpf's messages on stderr: none (0), warnings (-v), all (-vv). */
void hooks__log_level(int verbose);

/* The capabilities asyncprobe needs that this process lacks ("" if none). */
const char *hooks__caps_missing(char *buf, size_t len);

#endif
