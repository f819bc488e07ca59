// SPDX-License-Identifier: MIT
/*
 * CPython objects read out of a target: the interpreter's thread list, a
 * thread's frame chain, code objects with their str and bytes members and
 * line tables, each frame symbolized, for every layout (3.8-3.15) and for
 * a 3.13+ target's own _Py_DebugOffsets, which it could forge.
 *
 * Input: layout choice (1 byte, image.h), then the addresses of _PyRuntime,
 * of a thread state and of a code object, and a frame's instruction (u64
 * each), then the memory image (image.h).
 *
 * Seeds: snapshots of real interpreters 3.8-3.15 (gen_seeds.py): with
 * FUZZ_GEN="PID N FILE" this does the same to the live process PID, the
 * roots being the Nth thread state of its list (0: the newest) and that
 * thread's innermost frame.
 * FUZZ_VERBOSE=1 prints what a run resolves.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "image.h"
#include "pysym.h"

#define HDR 33
#define MAX_FRAMES 64

struct roots {
	uint64_t runtime, tstate, code, instr;
};

static void say_frame(const char *what, int err,
		      const struct py_frame_info *info)
{
	image_say("%s: %d %s %s:%d\n", what, err, info->function, info->file,
		  info->line);
}

static void exercise(struct py_target *t, const struct roots *r)
{
	struct ap_frame f = { .code = r->code, .instr = r->instr };
	struct ap_frame frames[MAX_FRAMES];
	struct py_frame_info info;
	struct py_symbolizer *s;
	uint64_t addr;
	int n;

	s = pysym__new(t);
	if (!s)
		return;
	say_frame("frame", pysym__resolve(s, &f, &info), &info);
	say_frame("code", pysym__code(s, r->code, &info), &info);
	/* a later sample: the cached entry is checked against the target */
	pysym__new_epoch(s);
	pysym__resolve(s, &f, &info);
	n = py_target__walk(t, r->tstate, frames, MAX_FRAMES);
	image_say("walk: %d\n", n);
	for (int i = 0; i < n; i++)
		say_frame("  at", pysym__resolve(s, &frames[i], &info), &info);
	/* this process's tids are not the image's: the list is walked, no
	 * thread matches */
	py_target__threads(t, NULL, NULL);
	py_target__gil(t, &addr);
	py_target__gc_flag(t, &addr);
	py_target__gc_stats(t, &addr);
	pysym__free(s);
}

struct pick {
	int want, seen;
	uint64_t tstate;
};

static int pick_thread(void *ctx, uint32_t host, uint32_t ns, uint64_t ts)
{
	struct pick *p = ctx;

	if (p->seen++ == p->want) {
		p->tstate = ts;
		return 1;
	}
	return 0;
}

/* FUZZ_GEN="PID N FILE": snapshot what a run reads of the live PID. */
static int gen(const char *spec)
{
	struct py_target *t = calloc(1, sizeof(*t));
	struct ap_frame frames[1];
	struct pick pick = { 0 };
	uint32_t rel[4] = { 1, 9, 17, 25 };
	struct roots r = { 0 };
	uint8_t hdr[HDR];
	char path[512], err[512];
	int pid;

	if (!t || sscanf(spec, "%d %d %511s", &pid, &pick.want, path) != 3)
		return 2;
	image_log = stderr;
	snap_start();
	if (py_target__open(t, pid, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (py_target__threads(t, pick_thread, &pick) <= 0 || !pick.tstate ||
	    py_target__walk(t, pick.tstate, frames, 1) != 1) {
		fprintf(stderr, "PID %d: no thread %d with a frame\n", pid,
			pick.want);
		return 1;
	}
	r.runtime = t->runtime;
	r.tstate = pick.tstate;
	r.code = frames[0].code;
	r.instr = frames[0].instr;
	exercise(t, &r);
	hdr[0] = image_sel(t);
	memcpy(hdr + 1, &r, sizeof(r));
	if (snap_write(path, hdr, sizeof(hdr), rel,
		       t->off->instr_kind == PY_INSTR_POINTER ? 4 : 3)) {
		perror(path);
		return 1;
	}
	free(t);
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	image_init();
	if (getenv("FUZZ_GEN"))
		exit(gen(getenv("FUZZ_GEN")));
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct py_target t;
	struct roots r;

	if (size < HDR)
		return 0;
	memcpy(&r, data + 1, sizeof(r));
	image_load(data + HDR, size - HDR);
	memset(&t, 0, sizeof(t));
	t.pid = t.ns_pid = getpid();
	t.runtime = r.runtime;
	if (image_layout(&t, data[0]))
		return 0;
	exercise(&t, &r);
	return 0;
}
