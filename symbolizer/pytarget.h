/* SPDX-License-Identifier: MIT */
/* A running CPython process, seen from outside: where its runtime state
 * lives, which version it is, its threads and their frames. */
#ifndef PYTARGET_H
#define PYTARGET_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "asyncprobe.h"
#include "pyversions.h"

struct py_task {
	uint32_t host; /* tid as this (the host's) PID namespace sees it */
	uint32_t ns;   /* tid in the target's own PID namespace */
};

struct py_target {
	pid_t pid;
	pid_t ns_pid;		 /* its PID in its own namespace */
	int major, minor, micro; /* micro -1: unknown */
	uint64_t runtime;	 /* address of _PyRuntime in the target */
	char object[PATH_MAX];	 /* file that holds it, as the target sees it */
	const struct py_offsets *off; /* the table's row, or &dyn */
	struct py_offsets dyn;	      /* read from the target (3.13+) */
	const char *layout_source;    /* "_Py_DebugOffsets", "version table" */
	/* <= 3.10: where struct pthread keeps the kernel tid */
	long pthread_tid_off;
	bool pthread_tid_sure;
};

/* Does @pid map a file whose path contains @needle? */
bool py_target__maps_object(pid_t pid, const char *needle);

/* Read @len bytes at @addr of @pid; 0 or -errno (-EFAULT: short read). */
int proc_read(pid_t pid, uint64_t addr, void *buf, size_t len);

/*
 * Find the CPython runtime of @pid.  On failure returns -errno and writes a
 * one-line reason for the user into @err (what was found, what to do).
 */
int py_target__open(struct py_target *t, pid_t pid, char *err, size_t errlen);

typedef int (*py_thread_cb)(void *ctx, uint32_t host_tid, uint32_t ns_tid,
			    uint64_t tstate);

/*
 * Call @cb for every live thread state of every interpreter (bounded
 * walk), with the thread's tid on the host and in the target's own PID
 * namespace.  Returns the number of threads seen, or -errno.
 */
int py_target__threads(struct py_target *t, py_thread_cb cb, void *ctx);

/* Userspace twin of the BPF frame walk: innermost first.  Only stable
 * while the thread is blocked. Returns the number of frames, or -errno. */
int py_target__walk(const struct py_target *t, uint64_t tstate,
		    struct ap_frame *frames, int max);

/* The same, also giving each frame's address in @addrs. */
int py_target__walk_addrs(const struct py_target *t, uint64_t tstate,
			  struct ap_frame *frames, uint64_t *addrs, int max);

/* Where a thread's running asyncio task and a task's name are, and the
 * lists that link every native task (3.14+, the AsyncioDebug section). */
struct py_asyncio {
	size_t tstate_running_task; /* in the thread state; 0: unknown */
	size_t tstate_running_loop; /* the loop running on that thread */
	size_t task_name;	    /* PyObject *: str, or int N for "Task-N" */
	size_t task_size;
	size_t task_node; /* list node {next, prev} in a task */
	/* who awaits a task (gather, TaskGroup): one object or a set */
	size_t task_awaited_by, task_awaited_by_is_set;
	size_t interp_tasks_head; /* tasks whose thread has gone */
	size_t tstate_tasks_head; /* tasks of a live thread */
};

int py_target__asyncio(const struct py_target *t, struct py_asyncio *out);

struct elf_file;

/* The first object mapped by @pid whose path contains @needle, opened, and
 * its load bias (and where its first mapping starts); NULL if none. */
struct elf_file *py_target__object(pid_t pid, const char *needle,
				   uint64_t *bias, uint64_t *start);

/* Address of the main interpreter's GIL state in the target. */
int py_target__gil(const struct py_target *t, uint64_t *gil);

/* Address of the main interpreter's int gc.collecting (set while the
 * cyclic garbage collector runs). */
int py_target__gc_flag(const struct py_target *t, uint64_t *flag);

/* Address of the main interpreter's gc.generation_stats[3], each
 * {collections, collected, uncollectable}; -ENOTSUP where there is none. */
int py_target__gc_stats(const struct py_target *t, uint64_t *stats);

/* The walk description handed to the BPF side. */
void py_target__bpf_walk(const struct py_target *t, struct ap_py_walk *w);

#endif
