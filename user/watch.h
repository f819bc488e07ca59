/* SPDX-License-Identifier: MIT */
/*
 * Hardware write watchpoints on addresses in the target: did the target
 * write this word since it was armed?  One perf breakpoint per CPU and
 * address, filtered to the target by a BPF program (on_watch), so that a
 * watch costs the target nothing until the word is written, and nothing
 * per context switch as a per-thread breakpoint would.  The CPU has few
 * (AP_WATCH_MAX on x86), shared with debuggers: arming can fail.
 */
#ifndef WATCH_H
#define WATCH_H

#include <stdint.h>

struct bpf_program;
struct watch;

/* @prog: on_watch; @hits_fd: its watch_hits map. */
struct watch *watch__new(struct bpf_program *prog, int hits_fd);
void watch__free(struct watch *w);

/* Watch the 8 bytes at @addr for writes.  -ENOSPC: no slot free (ours or
 * the CPU's); -errno: cannot at all (no hardware breakpoints here). */
int watch__arm(struct watch *w, uint64_t addr);
void watch__disarm(struct watch *w, uint64_t addr);

/* Writes by the target to @addr since armed; -ENOENT: not armed. */
int64_t watch__hits(struct watch *w, uint64_t addr);

/* Addresses armed now. */
int watch__armed(const struct watch *w);

#endif
