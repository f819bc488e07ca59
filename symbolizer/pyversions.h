/* SPDX-License-Identifier: MIT */
/*
 * CPython layouts as data: one row per minor version.  Rows come from
 * symbolizer/gen/pyoffsets_gen.c compiled against that version's internal
 * headers; nothing else in the tool knows a CPython offset.
 */
#ifndef PYVERSIONS_H
#define PYVERSIONS_H

#include <stddef.h>
#include <stdint.h>

enum py_linetable_kind {
	PY_LT_LNOTAB = 1,    /* <= 3.9: (bytecode delta, line delta) pairs */
	PY_LT_310 = 2,	     /* 3.10: (start delta, line delta) pairs */
	PY_LT_LOCATIONS = 3, /* 3.11+: location table */
};

/* What a frame's instruction field holds. */
enum py_instr_kind {
	/* 3.11+: pointer into co_code_adaptive at the instruction running
	 * (prev_instr, instr_ptr) */
	PY_INSTR_POINTER = 1,
	PY_INSTR_LASTI_BYTES = 2, /* <= 3.9: int f_lasti, a byte offset */
	PY_INSTR_LASTI_UNITS = 3, /* 3.10: int f_lasti, in code units */
};

struct py_offsets {
	int major, minor;
	enum py_linetable_kind linetable_kind;
	enum py_instr_kind instr_kind;
	/* frames with an owner >= this are C-stack shims (3.12+); -1: none */
	int owner_cstack;
	int code_ptr_tag_mask; /* tag bits of f_executable (3.14+): cleared */

	size_t runtime_interpreters_head;
	size_t interp_next;
	size_t interp_threads_head;
	size_t tstate_next;
	size_t tstate_thread_id;      /* pthread_t */
	long tstate_native_thread_id; /* 3.11+; -1: map from thread_id */
	size_t tstate_frame; /* -> cframe when cframe_current_frame >= 0 */
	long cframe_current_frame;
	size_t frame_code;
	size_t frame_previous;
	size_t frame_instr;
	long frame_owner; /* -1: no owner field */
	/* the GIL: embedded in _PyRuntime (<= 3.11) or pointed to by
	 * interp->ceval.gil (3.12+); -1 where not */
	long gil_runtime;
	long interp_gil_ptr;
	size_t gil_last_holder; /* PyThreadState * in the GIL state */
	size_t gil_size;
	/* int gc.collecting: in _PyRuntime (3.8) or the interpreter (3.9+) */
	long gc_runtime_collecting;
	long interp_gc_collecting;
	/* generation_stats[3] {collections, collected, uncollectable} sits this
	 * many bytes before gc.collecting; 0: not there (3.15 keeps ring
	 * buffers of timed stats instead) */
	size_t gc_stats_back;
	size_t code_filename;
	size_t code_name;
	long code_qualname; /* 3.11+; -1: use co_name */
	size_t code_firstlineno;
	size_t code_linetable; /* co_lnotab <= 3.9 */
	size_t code_adaptive;  /* bytecode (3.11+); else sizeof(PyCodeObject) */
	size_t unicode_state;
	size_t unicode_length;
	size_t unicode_ascii_data;
	size_t unicode_compact_data;
	/* a frame's locals, then its cells and frees (fast locals), and the
	 * code object's tuple of their names (co_varnames <= 3.10: names the
	 * locals only, which come first) */
	size_t frame_localsplus;
	size_t code_localsplusnames;
	size_t tuple_size; /* ob_size */
	size_t tuple_items;
	size_t float_value; /* ob_fval: a C double */
	size_t bytes_size;
	size_t bytes_data;
	size_t object_type;
};

/* The row for major.minor, or NULL when that version is not supported. */
const struct py_offsets *py_offsets__find(int major, int minor);

/* Append "M.m" to the list "3.8, 3.9" in @buf unless it is there. */
void py_versions__add(char *buf, size_t len, int major, int minor);

/* Append the versions the table has rows for to the list in @buf. */
const char *py_offsets__supported(char *buf, size_t len);

#endif
