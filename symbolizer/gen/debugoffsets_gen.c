/* SPDX-License-Identifier: MIT */
/*
 * Prints one row of symbolizer/pydebug.c: where, inside CPython 3.13+'s
 * _Py_DebugOffsets, the offsets asyncprobe reads are kept, plus the few
 * constants that struct does not carry.  Build it against each version's
 * internal headers (as pyoffsets_gen.c) and commit the output.
 */
#define Py_BUILD_CORE 1
#include <Python.h>
#include <stddef.h>
#include <stdio.h>
#include <internal/pycore_runtime.h>
#if PY_VERSION_HEX >= 0x030e0000
#include <internal/pycore_debug_offsets.h>
#include <internal/pycore_stackref.h>
#include <internal/pycore_interpframe_structs.h>
#else
#include <internal/pycore_frame.h>
#endif

#define OFF(name, field) \
	printf("\t\t." #name " = %zu,\n", offsetof(_Py_DebugOffsets, field))

int main(void)
{
	printf("\t{\n");
	printf("\t\t.major = %d, .minor = %d,\n", PY_MAJOR_VERSION,
	       PY_MINOR_VERSION);
	printf("\t\t.size = %zu,\n", sizeof(_Py_DebugOffsets));
	OFF(version, version);
	OFF(free_threaded, free_threaded);
	OFF(runtime_size, runtime_state.size);
	OFF(runtime_interpreters_head, runtime_state.interpreters_head);
	OFF(interp_size, interpreter_state.size);
	OFF(interp_next, interpreter_state.next);
	OFF(interp_threads_head, interpreter_state.threads_head);
	OFF(interp_ceval_gil, interpreter_state.ceval_gil);
	OFF(interp_gil_state, interpreter_state.gil_runtime_state);
	OFF(interp_gil_holder, interpreter_state.gil_runtime_state_holder);
	OFF(interp_gc, interpreter_state.gc);
	OFF(gc_collecting, gc.collecting);
	OFF(tstate_size, thread_state.size);
	OFF(tstate_next, thread_state.next);
	OFF(tstate_current_frame, thread_state.current_frame);
	OFF(tstate_thread_id, thread_state.thread_id);
	OFF(tstate_native_thread_id, thread_state.native_thread_id);
	OFF(frame_size, interpreter_frame.size);
	OFF(frame_previous, interpreter_frame.previous);
	OFF(frame_executable, interpreter_frame.executable);
	OFF(frame_instr_ptr, interpreter_frame.instr_ptr);
	OFF(frame_owner, interpreter_frame.owner);
	OFF(frame_localsplus, interpreter_frame.localsplus);
	OFF(code_size, code_object.size);
	OFF(code_filename, code_object.filename);
	OFF(code_name, code_object.name);
	OFF(code_qualname, code_object.qualname);
	OFF(code_linetable, code_object.linetable);
	OFF(code_firstlineno, code_object.firstlineno);
	OFF(code_adaptive, code_object.co_code_adaptive);
	OFF(code_localsplusnames, code_object.localsplusnames);
	OFF(tuple_size, tuple_object.ob_size);
	OFF(tuple_items, tuple_object.ob_item);
	OFF(float_value, float_object.ob_fval);
	OFF(pyobject_ob_type, pyobject.ob_type);
	OFF(bytes_ob_size, bytes_object.ob_size);
	OFF(bytes_ob_sval, bytes_object.ob_sval);
	OFF(unicode_state, unicode_object.state);
	OFF(unicode_length, unicode_object.length);
	OFF(unicode_asciiobject_size, unicode_object.asciiobject_size);
	printf("\t\t.gil_size = %zu,\n", sizeof(struct _gil_runtime_state));
	/* 3.15 replaced the per-generation counters with timed ring buffers */
#if PY_VERSION_HEX >= 0x030f0000
	printf("\t\t.gc_stats_back = 0,\n");
#else
	printf("\t\t.gc_stats_back = %zu,\n",
	       offsetof(struct _gc_runtime_state, collecting) -
		       offsetof(struct _gc_runtime_state, generation_stats));
#endif
#if PY_VERSION_HEX >= 0x030e0000
	/* interpreter-owned entry frames and C-stack shims: both skipped */
	printf("\t\t.owner_cstack = %d,\n", FRAME_OWNED_BY_INTERPRETER);
	printf("\t\t.code_tag_mask = %d,\n", (int)Py_TAG_BITS);
#else
	printf("\t\t.owner_cstack = %d,\n", FRAME_OWNED_BY_CSTACK);
	printf("\t\t.code_tag_mask = 0,\n");
#endif
	printf("\t},\n");
	return 0;
}
