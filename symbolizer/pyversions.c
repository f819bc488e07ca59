// SPDX-License-Identifier: MIT
#include <stdio.h>
#include "pyversions.h"

static const struct py_offsets rows[] = {
	/* 3.11: pyenv 3.11.7 and Debian 3.11.2 print the same row */
	{
		.major = 3,
		.minor = 11,
		.linetable_kind = PY_LT_LOCATIONS,
		.instr_is_next = 0,
		.owner_cstack = -1,
		.code_ptr_mask_bits = 0,
		.runtime_interpreters_head = 40,
		.interp_next = 0,
		.interp_threads_head = 16,
		.tstate_next = 8,
		.tstate_native_thread_id = 160,
		.tstate_frame = 56,
		.cframe_current_frame = 8,
		.frame_code = 32,
		.frame_previous = 48,
		.frame_instr = 56,
		.frame_owner = 69,
		.code_filename = 112,
		.code_name = 120,
		.code_qualname = 128,
		.code_firstlineno = 72,
		.code_linetable = 136,
		.code_adaptive = 184,
		.unicode_state = 32,
		.unicode_length = 16,
		.unicode_ascii_data = 48,
		.unicode_compact_data = 72,
		.bytes_size = 16,
		.bytes_data = 32,
		.object_type = 8,
	},
};

const struct py_offsets *py_offsets__find(int major, int minor)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (rows[i].major == major && rows[i].minor == minor)
			return &rows[i];
	return NULL;
}

const char *py_offsets__supported(char *buf, size_t len)
{
	size_t off = 0;

	if (!len)
		return buf;
	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]) && off < len;
	     i++) {
		int n = snprintf(buf + off, len - off, "%s%d.%d", i ? ", " : "",
				 rows[i].major, rows[i].minor);
		if (n < 0)
			break;
		off += (size_t)n;
	}
	return buf;
}
