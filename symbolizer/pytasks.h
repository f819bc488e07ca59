/* SPDX-License-Identifier: MIT */
/*
 * A target's asyncio tasks, read from its memory without stopping it: the
 * registry of live tasks, the counter behind automatic "Task-N" names, and
 * a task's chain of suspended coroutines.
 *
 * The _asyncio module's structs are private to its C file, so their
 * layout is measured inside each real interpreter by
 * symbolizer/gen/asyncio_gen.py: one row per minor version, as data.
 */
#ifndef PYTASKS_H
#define PYTASKS_H

#include <stdbool.h>
#include <stdint.h>
#include "pytarget.h"

struct py_asyncio_layout {
	int major, minor;
	long interp_modules;	  /* sys.modules in the interpreter */
	long mod_dict, mod_state; /* PyModuleObject */
	long set_used, set_mask, set_table;
	/* WeakSet.data: a dict at ws_dict (<= 3.10), else attribute 0 of its
	 * values at *(obj + ws_data_a) + ws_data_b, or obj + ws_data_a
	 * (ws_data_b -1: values inline, 3.13+) */
	long ws_dict, ws_data_a, ws_data_b;
	long wr_object; /* weakref referent */
	long type_base, type_name;
	long fut_loop, fut_state, task_fut_waiter, task_coro, task_name;
	long fut_exception; /* the exception a finished future holds */
	/* 3.11+: the int counting cancel() calls not undone by uncancel() */
	long task_cancels;
	/* 3.12+: in the module state */
	long st_counter, st_scheduled, st_eager;
	/* code object of a coroutine (<= 3.10: gi_code; 3.11+: its frame's) */
	long coro_code;
	/* 3.11+: where a suspended coroutine keeps what it awaits: the frame's
	 * stack top, an int index from coro_localsplus (kind 1) or a pointer
	 * (kind 2); the awaited object is coro_yf_back slots below it */
	long coro_stack, coro_stack_kind, coro_localsplus, coro_yf_back;
};

enum py_task_state {
	PY_TASK_PENDING = 0,
	PY_TASK_CANCELLED = 1,
	PY_TASK_FINISHED = 2,
};

struct py_task_info {
	uint64_t addr;
	uint64_t loop;	 /* the event loop object */
	uint64_t coro;	 /* the coroutine object */
	uint64_t code;	 /* its code object; 0 when unknown */
	uint64_t waiter; /* the future it waits on; 0: none */
	uint64_t name;	 /* name object: str, or int N (3.14+ lazy) */
	uint64_t number; /* N of an automatic "Task-N" name; 0: named */
	bool named;	 /* given a name (number 0 and the name was read) */
	int state;	 /* enum py_task_state */
	int32_t cancels; /* cancel() calls not uncancelled (3.11+; else 0) */
};

struct py_tasks;

/* The layout row for major.minor, or NULL. */
const struct py_asyncio_layout *py_asyncio__layout(int major, int minor);

/*
 * Find the target's asyncio registry.  -ENOENT while the target has not
 * imported asyncio yet (call again later); -ENOTSUP without a layout row
 * or without the C accelerator; @err says why.
 */
int py_tasks__open(struct py_tasks **out, const struct py_target *t, char *err,
		   size_t errlen);
void py_tasks__free(struct py_tasks *pt);

/* Which counter stands behind tasks_created ("symbol", "module state",
 * "calibrated"); NULL when none was found. */
const char *py_tasks__counter_source(const struct py_tasks *pt);

/*
 * The automatic-name counter: one per task created without a name.  @now
 * is its value (comparable with task numbers); @now - @base is the tasks
 * created since open.
 * -ENOENT: no counter known.
 */
int py_tasks__counter(struct py_tasks *pt, uint64_t *now, uint64_t *base);

/* Changes when a calibrated counter's value now comes from another word:
 * values read before are not comparable with @now after. */
unsigned py_tasks__counter_epoch(const struct py_tasks *pt);

typedef int (*py_task_cb)(void *ctx, const struct py_task_info *ti);

/*
 * Call @cb for every registered task, at most @max (bounded reads; tasks
 * that die during the walk are skipped).  Returns the number of tasks
 * seen, or -errno; *@truncated when @max stopped it.
 */
int py_tasks__walk(struct py_tasks *pt, int max, py_task_cb cb, void *ctx,
		   bool *truncated);

/* A task's name as text ("Task-12" for an automatic one). */
int py_tasks__name(struct py_tasks *pt, const struct py_task_info *ti,
		   char *buf, size_t len);

/* The same from the first @n bytes of the name object, read at once (the
 * kernel's snapshot: the task is often gone by the time it is looked at);
 * only the object's type is read from the target now. */
int py_tasks__name_bytes(struct py_tasks *pt, const uint8_t *obj, size_t n,
			 char *buf, size_t len);

/*
 * The chain of coroutines a task is suspended in, outermost first, as
 * frames (code, instruction) for pysym (3.11+).  *@awaits is the first
 * object in the chain that is not a coroutine (a future or task), 0 if
 * none.  Returns the number of frames, or -errno.
 */
int py_tasks__coro_stack(struct py_tasks *pt, uint64_t coro,
			 struct ap_frame *frames, int max, uint64_t *awaits);

/*
 * The tasks that await task @task through gather() or a TaskGroup, as the
 * interpreter records them (3.14+), at most @max.  Returns how many, 0 if
 * none or not recorded by this version, or -errno.
 */
int py_tasks__awaited_by(struct py_tasks *pt, uint64_t task, uint64_t *out,
			 int max);

/* Is @obj an asyncio task (the C Task or a subclass)? */
bool py_tasks__is_task(struct py_tasks *pt, uint64_t obj);

/* The type name of object @obj, e.g. "_GatheringFuture". */
int py_tasks__type_name(struct py_tasks *pt, uint64_t obj, char *buf,
			size_t len);

#endif
