/* SPDX-License-Identifier: MIT */
/*
 * When the selector hook is attached.  Where it costs every syscall on the
 * machine (a syscall tracepoint turns on the kernel's syscall tracing path
 * for every task: kernels without fentry or kprobes), it is attached only
 * while it is needed: from the start until every loop found has its own
 * clock (pyclock.h), while a loop has none (uvloop), and a window of
 * SELHOOK_WINDOW_S every SELHOOK_PERIOD_S (at multiples of it of the
 * monotonic clock: the same for every asyncprobe on the machine), in which
 * iterations are timed exactly for the lag histogram and new loops are
 * found.  The loops' own clocks, read at timer ticks and switch-outs, time
 * the stalls in between.
 * Elsewhere (fentry, kprobes) it stays attached.
 */
#ifndef SELHOOK_H
#define SELHOOK_H

#include <stdbool.h>

#define SELHOOK_PERIOD_S 10.0
#define SELHOOK_WINDOW_S 0.5
/* the two above, as --help, check and the metrics' help say them */
#define SELHOOK_WINDOWS_TEXT "0.5 s in 10"
/* what an iteration timed in a window stands for, said the same way */
#define SELHOOK_WEIGHT_TEXT "20"
/* at the start: attached until the loops have clocks, or this long */
#define SELHOOK_START_S 5.0

struct asyncprobe_bpf;
struct selhook;

/* @skel loaded and attached; NULL on allocation failure (then it stays
 * attached).  @always: never detach (--selector-hook always). */
struct selhook *selhook__new(struct asyncprobe_bpf *skel, double now,
			     bool always, int verbose);

/* Attach or detach as due at @now; @needed: outside the windows too (a
 * loop has no clock yet, or none has been found). */
void selhook__tick(struct selhook *h, double now, bool needed);

/* Does it ever detach (a hook that costs every syscall, not --always)? */
bool selhook__windowed(const struct selhook *h);

/* The share of the run until @now it was attached, 0..1. */
double selhook__share(const struct selhook *h, double now);

/* Stop detaching (the run ends); joins a detach in progress. */
void selhook__free(struct selhook *h);

#endif
