/* SPDX-License-Identifier: MIT */
/*
 * CPython 3.13+ describes its own layout in _Py_DebugOffsets, the first
 * member of _PyRuntime.  This reads it from a target, checks it, and turns
 * it into the same struct py_offsets the version table provides.
 */
#ifndef PYDEBUG_H
#define PYDEBUG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "pyversions.h"

/* Where the fields asyncprobe needs sit inside _Py_DebugOffsets, for one
 * minor version (from symbolizer/gen/debugoffsets_gen.c). */
struct py_debug_layout {
	int major, minor;
	size_t size;
	size_t version, free_threaded;
	size_t runtime_size, runtime_interpreters_head;
	size_t interp_size, interp_next, interp_threads_head;
	size_t interp_ceval_gil, interp_gil_state, interp_gil_holder;
	size_t interp_gc, gc_collecting;
	size_t tstate_size, tstate_next, tstate_current_frame, tstate_thread_id,
		tstate_native_thread_id;
	size_t frame_size, frame_previous, frame_executable, frame_instr_ptr,
		frame_owner, frame_localsplus;
	size_t code_size, code_filename, code_name, code_qualname,
		code_linetable, code_firstlineno, code_adaptive,
		code_localsplusnames;
	size_t tuple_size, tuple_items, float_value;
	size_t pyobject_ob_type;
	size_t bytes_ob_size, bytes_ob_sval;
	size_t unicode_state, unicode_length, unicode_asciiobject_size;
	/* not in _Py_DebugOffsets */
	size_t gil_size;
	size_t gc_stats_back; /* 0: none of the classic generation_stats */
	int owner_cstack;
	int code_tag_mask;
};

#define PY_DEBUG_COOKIE "xdebugpy"

const struct py_debug_layout *py_debug__layout(int major, int minor);

/* Append the versions with a layout row to the list in @buf. */
const char *py_debug__supported(char *buf, size_t len);

/*
 * Parse a _Py_DebugOffsets image @blob of @len bytes (read from the start
 * of _PyRuntime) into @out.  Returns 0; -ENOENT when there is no cookie;
 * -ENOTSUP for a version without a layout row or a free-threaded build;
 * -EINVAL when a value fails validation.  @err says which, for the user.
 */
int py_debug__parse(const uint8_t *blob, size_t len, struct py_offsets *out,
		    char *err, size_t errlen);

#endif
