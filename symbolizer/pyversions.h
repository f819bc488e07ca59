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

struct py_offsets {
	int major, minor;
	enum py_linetable_kind linetable_kind;
	/* instruction pointer of a frame: a pointer into co_code_adaptive
	 * (3.11+) that points at the last instruction started (prev_instr,
	 * 3.11/3.12) or the next one (instr_ptr, 3.13+) */
	int instr_is_next;
	int owner_cstack; /* owner value of C-stack shim frames, -1: none */
	int code_ptr_mask_bits;

	size_t runtime_interpreters_head;
	size_t interp_next;
	size_t interp_threads_head;
	size_t tstate_next;
	size_t tstate_native_thread_id;
	size_t tstate_frame; /* -> cframe when cframe_current_frame >= 0 */
	long cframe_current_frame;
	size_t frame_code;
	size_t frame_previous;
	size_t frame_instr;
	long frame_owner;
	size_t code_filename;
	size_t code_name;
	size_t code_qualname;
	size_t code_firstlineno;
	size_t code_linetable;
	size_t code_adaptive;
	size_t unicode_state;
	size_t unicode_length;
	size_t unicode_ascii_data;
	size_t unicode_compact_data;
	size_t bytes_size;
	size_t bytes_data;
	size_t object_type;
};

/* The row for major.minor, or NULL when that version is not supported. */
const struct py_offsets *py_offsets__find(int major, int minor);

/* "3.11, 3.12" into @buf: the versions this build knows. */
const char *py_offsets__supported(char *buf, size_t len);

#endif
