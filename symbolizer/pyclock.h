/* SPDX-License-Identifier: MIT */
/*
 * The event loop's own clock.  asyncio's BaseEventLoop._run_once, pure
 * Python in every supported version, sets its local end_time to
 * loop.time() (CLOCK_MONOTONIC) plus the clock's resolution (1 ns here)
 * right after the selector returned and its events were queued, and keeps
 * it until the iteration's callbacks are done.  The next call's frame
 * starts with that local unset, in the same place on the thread's frame
 * stack.  Read from outside, that local says which iteration a busy loop
 * is in, and since when, with no hook on its selector.
 */
#ifndef PYCLOCK_H
#define PYCLOCK_H

#include <stdint.h>
#include "pysym.h"
#include "pytarget.h"

struct py_loop_clock {
	uint64_t frame; /* _run_once's frame */
	uint64_t code;	/* its code object */
	uint64_t slot;	/* its local end_time */
};

/*
 * Find the clock of the loop run by the thread with thread state @tstate.
 * Best called while the thread sleeps in its selector (its frames are
 * still then).  Returns 0; -ENOENT when no frame of its stack is
 * _run_once of asyncio's base_events.py (uvloop, or no loop running);
 * -EINVAL when that code object has no local end_time; -errno on a failed
 * read.
 */
int py_clock__find(struct py_symbolizer *s, const struct py_target *t,
		   uint64_t tstate, struct py_loop_clock *out);

/*
 * Read @c: 1 and the time the running iteration's callbacks began in
 * @since (CLOCK_MONOTONIC seconds); 0 between iterations (the selector and
 * what precedes it); -ESTALE when the frame is no longer _run_once's (the
 * loop stopped); -EINVAL when the local is not a plausible time (a loop
 * with its own time()); -errno on a failed read.
 */
int py_clock__read(const struct py_target *t, const struct py_loop_clock *c,
		   double *since);

#endif
