// SPDX-License-Identifier: MIT
#include <errno.h>
#include <math.h>
#include <string.h>
#include "pyclock.h"

/* _run_once has about a dozen locals; a names tuple far longer is not it */
#define NAMES_MAX 256
/* deep enough for any loop's stack read while it waits in its selector */
#define FIND_FRAMES 256

static bool ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), m = strlen(tail);

	return n >= m && !strcmp(s + n - m, tail);
}

/* Is @code BaseEventLoop._run_once?  (co_name before 3.11, qualname after) */
static bool is_run_once(struct py_symbolizer *s, uint64_t code)
{
	struct py_frame_info info;

	if (pysym__code(s, code, &info))
		return false;
	return (!strcmp(info.function, "_run_once") ||
		!strcmp(info.function, "BaseEventLoop._run_once")) &&
	       ends_with(info.file, "/asyncio/base_events.py");
}

/* The index of the local @name among @code's fast locals; -errno. */
static int local_index(const struct py_target *t, uint64_t code,
		       const char *name)
{
	const struct py_offsets *o = t->off;
	uint64_t names, item;
	int64_t n;
	char buf[32];
	int err;

	if ((err = proc_read(t->pid, code + o->code_localsplusnames, &names,
			     sizeof(names))) ||
	    (err = proc_read(t->pid, names + o->tuple_size, &n, sizeof(n))))
		return err;
	if (n <= 0 || n > NAMES_MAX)
		return -EINVAL;
	for (int64_t i = 0; i < n; i++) {
		if ((err = proc_read(t->pid, names + o->tuple_items + 8 * i,
				     &item, sizeof(item))))
			return err;
		if (!pysym__decode_unicode(o, t->pid, item, buf, sizeof(buf)) &&
		    !strcmp(buf, name))
			return (int)i;
	}
	return -EINVAL;
}

int py_clock__find(struct py_symbolizer *s, const struct py_target *t,
		   uint64_t tstate, struct py_loop_clock *out)
{
	struct ap_frame frames[FIND_FRAMES];
	uint64_t addrs[FIND_FRAMES];
	int n, i, idx;

	n = py_target__walk_addrs(t, tstate, frames, addrs, FIND_FRAMES);
	if (n < 0)
		return n;
	/* the outermost one: a nested loop's is above it, and is not ours */
	for (i = n - 1; i >= 0; i--)
		if (is_run_once(s, frames[i].code))
			break;
	if (i < 0)
		return -ENOENT;
	idx = local_index(t, frames[i].code, "end_time");
	if (idx < 0)
		return idx;
	out->frame = addrs[i];
	out->code = frames[i].code;
	out->slot = addrs[i] + t->off->frame_localsplus + 8 * (uint64_t)idx;
	return 0;
}

int py_clock__read(const struct py_target *t, const struct py_loop_clock *c,
		   double *since)
{
	const struct py_offsets *o = t->off;
	uint64_t mask = ~(uint64_t)o->code_ptr_tag_mask, code, p;
	double v;
	int err;

	if ((err = proc_read(t->pid, c->frame + o->frame_code, &code,
			     sizeof(code))))
		return err;
	if ((code & mask) != c->code)
		return -ESTALE;
	if ((err = proc_read(t->pid, c->slot, &p, sizeof(p))))
		return err;
	/* 3.14+ keeps locals as tagged stack references */
	p &= mask;
	if (!p)
		return 0;
	if ((err = proc_read(t->pid, p + o->float_value, &v, sizeof(v))))
		return err;
	/* CLOCK_MONOTONIC seconds: positive, below ~300 years of uptime */
	if (!isfinite(v) || v <= 0 || v > 1e10)
		return -EINVAL;
	*since = v;
	return 1;
}
