// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "pydebug.h"

static const struct py_debug_layout layouts[] = {
	/* pyenv 3.13.0 headers; Debian 3.13.18 prints the same layout */
	{
		.major = 3,
		.minor = 13,
		.size = 584,
		.version = 8,
		.free_threaded = 16,
		.runtime_size = 24,
		.runtime_interpreters_head = 40,
		.interp_size = 48,
		.interp_next = 64,
		.interp_threads_head = 72,
		.interp_ceval_gil = 112,
		.interp_gil_state = 120,
		.interp_gil_holder = 144,
		.interp_gc = 80,
		.gc_collecting = 576,
		.tstate_size = 152,
		.tstate_next = 168,
		.tstate_current_frame = 184,
		.tstate_thread_id = 192,
		.tstate_native_thread_id = 200,
		.frame_size = 224,
		.frame_previous = 232,
		.frame_executable = 240,
		.frame_instr_ptr = 248,
		.frame_owner = 264,
		.frame_localsplus = 256,
		.code_size = 272,
		.code_filename = 280,
		.code_name = 288,
		.code_qualname = 296,
		.code_linetable = 304,
		.code_firstlineno = 312,
		.code_adaptive = 344,
		.code_localsplusnames = 328,
		.tuple_size = 416,
		.tuple_items = 408,
		.float_value = 480,
		.pyobject_ob_type = 360,
		.bytes_ob_size = 520,
		.bytes_ob_sval = 528,
		.unicode_state = 544,
		.unicode_length = 552,
		.unicode_asciiobject_size = 560,
		.gil_size = 208,
		.gc_stats_back = 72,
		.owner_cstack = 3,
		.code_tag_mask = 0,
	},
	/* Debian 3.14.10 headers */
	{
		.major = 3,
		.minor = 14,
		.size = 760,
		.version = 8,
		.free_threaded = 16,
		.runtime_size = 24,
		.runtime_interpreters_head = 40,
		.interp_size = 48,
		.interp_next = 64,
		.interp_threads_head = 72,
		.interp_ceval_gil = 120,
		.interp_gil_state = 128,
		.interp_gil_holder = 152,
		.interp_gc = 88,
		.gc_collecting = 656,
		.tstate_size = 176,
		.tstate_next = 192,
		.tstate_current_frame = 208,
		.tstate_thread_id = 216,
		.tstate_native_thread_id = 224,
		.frame_size = 248,
		.frame_previous = 256,
		.frame_executable = 264,
		.frame_instr_ptr = 272,
		.frame_owner = 288,
		.frame_localsplus = 280,
		.code_size = 312,
		.code_filename = 320,
		.code_name = 328,
		.code_qualname = 336,
		.code_linetable = 344,
		.code_firstlineno = 352,
		.code_adaptive = 384,
		.code_localsplusnames = 368,
		.tuple_size = 464,
		.tuple_items = 456,
		.float_value = 560,
		.pyobject_ob_type = 408,
		.bytes_ob_size = 600,
		.bytes_ob_sval = 608,
		.unicode_state = 624,
		.unicode_length = 632,
		.unicode_asciiobject_size = 640,
		.gil_size = 208,
		.gc_stats_back = 72,
		.owner_cstack = 3,
		.code_tag_mask = 3,
	},
	/* Debian 3.15.2 headers */
	{
		.major = 3,
		.minor = 15,
		.size = 888,
		.version = 8,
		.free_threaded = 16,
		.runtime_size = 24,
		.runtime_interpreters_head = 40,
		.interp_size = 48,
		.interp_next = 64,
		.interp_threads_head = 72,
		.interp_ceval_gil = 120,
		.interp_gil_state = 128,
		.interp_gil_holder = 152,
		.interp_gc = 88,
		.gc_collecting = 760,
		.tstate_size = 176,
		.tstate_next = 192,
		.tstate_current_frame = 208,
		.tstate_thread_id = 240,
		.tstate_native_thread_id = 248,
		.frame_size = 312,
		.frame_previous = 320,
		.frame_executable = 328,
		.frame_instr_ptr = 336,
		.frame_owner = 352,
		.frame_localsplus = 344,
		.code_size = 376,
		.code_filename = 384,
		.code_name = 392,
		.code_qualname = 400,
		.code_linetable = 408,
		.code_firstlineno = 416,
		.code_adaptive = 448,
		.code_localsplusnames = 432,
		.tuple_size = 560,
		.tuple_items = 552,
		.float_value = 656,
		.pyobject_ob_type = 472,
		.bytes_ob_size = 696,
		.bytes_ob_sval = 704,
		.unicode_state = 720,
		.unicode_length = 728,
		.unicode_asciiobject_size = 736,
		.gil_size = 208,
		.gc_stats_back = 0,
		.owner_cstack = 3,
		.code_tag_mask = 3,
	},
};

#define N_LAYOUTS (sizeof(layouts) / sizeof(layouts[0]))
/* Largest struct a field offset may point into: a sanity bound only. */
#define STRUCT_MAX (1 << 20)

const struct py_debug_layout *py_debug__layout(int major, int minor)
{
	for (size_t i = 0; i < N_LAYOUTS; i++)
		if (layouts[i].major == major && layouts[i].minor == minor)
			return &layouts[i];
	return NULL;
}

const char *py_debug__supported(char *buf, size_t len)
{
	for (size_t i = 0; i < N_LAYOUTS; i++)
		py_versions__add(buf, len, layouts[i].major, layouts[i].minor);
	return buf;
}

static uint64_t u64_at(const uint8_t *blob, size_t off)
{
	uint64_t v;

	memcpy(&v, blob + off, sizeof(v));
	return v;
}

/* Read the field at @off of the image; it must lie inside a struct of
 * @size bytes, leaving @room bytes for what is read there. */
static int field(const uint8_t *blob, size_t off, uint64_t size, size_t room,
		 const char *name, size_t *out, char *err, size_t errlen)
{
	uint64_t v = u64_at(blob, off);

	/* v > size first: v + room could wrap past zero */
	if (size == 0 || size > STRUCT_MAX || v > size || room > size - v) {
		snprintf(err, errlen,
			 "_Py_DebugOffsets: %s = %llu is outside its struct "
			 "(%llu bytes)",
			 name, (unsigned long long)v, (unsigned long long)size);
		return -EINVAL;
	}
	*out = (size_t)v;
	return 0;
}

int py_debug__parse(const uint8_t *blob, size_t len, struct py_offsets *out,
		    char *err, size_t errlen)
{
	const struct py_debug_layout *l;
	uint64_t version, rt, in, ts, fr, co, ascii;
	size_t v;
	int major, minor;
	char supported[64] = "";

	if (len < 16 || memcmp(blob, PY_DEBUG_COOKIE, 8)) {
		snprintf(err, errlen, "no _Py_DebugOffsets cookie");
		return -ENOENT;
	}
	version = u64_at(blob, 8);
	major = (int)(version >> 24 & 0xff);
	minor = (int)(version >> 16 & 0xff);
	l = py_debug__layout(major, minor);
	if (!l) {
		snprintf(err, errlen,
			 "Python %d.%d: its _Py_DebugOffsets layout is not "
			 "known to this asyncprobe (knows %s)",
			 major, minor,
			 py_debug__supported(supported, sizeof(supported)));
		return -ENOTSUP;
	}
	if (len < l->size) {
		snprintf(err, errlen, "_Py_DebugOffsets: short read");
		return -EINVAL;
	}
	if (u64_at(blob, l->free_threaded)) {
		snprintf(err, errlen,
			 "Python %d.%d is a free-threaded build, which "
			 "asyncprobe does not support",
			 major, minor);
		return -ENOTSUP;
	}

	memset(out, 0, sizeof(*out));
	out->major = major;
	out->minor = minor;
	out->linetable_kind = PY_LT_LOCATIONS;
	out->instr_kind = PY_INSTR_POINTER;
	out->owner_cstack = l->owner_cstack;
	out->code_ptr_tag_mask = l->code_tag_mask;
	out->cframe_current_frame = -1;

	rt = u64_at(blob, l->runtime_size);
	in = u64_at(blob, l->interp_size);
	ts = u64_at(blob, l->tstate_size);
	fr = u64_at(blob, l->frame_size);
	co = u64_at(blob, l->code_size);
	ascii = u64_at(blob, l->unicode_asciiobject_size);
#define F(dst, off, size, room)                                                \
	do {                                                                   \
		if (field(blob, l->off, size, room, #off, &v, err, errlen))    \
			return -EINVAL;                                        \
		out->dst = v;                                                  \
	} while (0)
	F(runtime_interpreters_head, runtime_interpreters_head, rt, 8);
	F(interp_next, interp_next, in, 8);
	F(interp_threads_head, interp_threads_head, in, 8);
	F(interp_gil_ptr, interp_ceval_gil, in, 8);
	F(tstate_next, tstate_next, ts, 8);
	F(tstate_frame, tstate_current_frame, ts, 8);
	F(tstate_thread_id, tstate_thread_id, ts, 8);
	F(tstate_native_thread_id, tstate_native_thread_id, ts, 8);
	F(frame_code, frame_executable, fr, 8);
	F(frame_previous, frame_previous, fr, 8);
	F(frame_instr, frame_instr_ptr, fr, 8);
	F(frame_owner, frame_owner, fr, 1);
	F(frame_localsplus, frame_localsplus, fr, 8);
	F(code_filename, code_filename, co, 8);
	F(code_name, code_name, co, 8);
	F(code_qualname, code_qualname, co, 8);
	F(code_linetable, code_linetable, co, 8);
	F(code_firstlineno, code_firstlineno, co, 4);
	F(code_localsplusnames, code_localsplusnames, co, 8);
	F(tuple_size, tuple_size, 64, 8);
	F(tuple_items, tuple_items, 64, 8);
	F(float_value, float_value, 64, 8);
	/* the bytecode is a flexible array at the end of the code object */
	F(code_adaptive, code_adaptive, co + 1, 0);
	F(object_type, pyobject_ob_type, 64, 8);
	F(bytes_size, bytes_ob_size, 64, 8);
	F(bytes_data, bytes_ob_sval, 64, 1);
	F(unicode_state, unicode_state, ascii, 4);
	F(unicode_length, unicode_length, ascii, 8);
#undef F
	if (ascii < 24 || ascii > 256 || out->code_adaptive > 512) {
		snprintf(err, errlen,
			 "_Py_DebugOffsets: implausible sizes (ascii object "
			 "%llu, code header %zu)",
			 (unsigned long long)ascii, out->code_adaptive);
		return -EINVAL;
	}
	/* the GIL: interp->ceval.gil points at it; the holder's offset is
	 * given within the interpreter's own copy of the GIL state */
	out->gil_runtime = -1;
	out->gil_size = l->gil_size;
	{
		uint64_t st = u64_at(blob, l->interp_gil_state),
			 holder = u64_at(blob, l->interp_gil_holder);

		if (holder < st || holder - st + 8 > l->gil_size) {
			snprintf(err, errlen,
				 "_Py_DebugOffsets: GIL holder at %llu is "
				 "outside the GIL state at %llu",
				 (unsigned long long)holder,
				 (unsigned long long)st);
			return -EINVAL;
		}
		out->gil_last_holder = (size_t)(holder - st);
	}
	/* the collector's "collecting" flag: interp->gc.collecting */
	out->gc_runtime_collecting = -1;
	{
		uint64_t gc = u64_at(blob, l->interp_gc),
			 coll = u64_at(blob, l->gc_collecting);

		if (gc + coll + 4 > in) {
			snprintf(err, errlen,
				 "_Py_DebugOffsets: gc.collecting at %llu+%llu "
				 "is outside the interpreter state",
				 (unsigned long long)gc,
				 (unsigned long long)coll);
			return -EINVAL;
		}
		out->interp_gc_collecting = (long)(gc + coll);
		out->gc_stats_back =
			coll >= l->gc_stats_back ? l->gc_stats_back : 0;
	}
	out->unicode_ascii_data = (size_t)ascii;
	/* PyCompactUnicodeObject: + utf8_length + utf8 (3.12+) */
	out->unicode_compact_data = (size_t)ascii + 16;
	return 0;
}
