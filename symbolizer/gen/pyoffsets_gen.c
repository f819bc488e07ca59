/* SPDX-License-Identifier: MIT */
/*
 * Prints one row of symbolizer/pyversions.c for the CPython whose internal
 * headers it is compiled against.  Build and run it per interpreter:
 *
 *   cc -I$PREFIX/include/python3.X -I$PREFIX/include/python3.X/internal \
 *      symbolizer/gen/pyoffsets_gen.c -o /tmp/gen && /tmp/gen
 *
 * The row is data: commit its output; the tool never includes CPython's
 * headers.  This file is the one place that knows the fields' source names.
 */
#define Py_BUILD_CORE 1
#include <Python.h>
#include <stddef.h>
#include <stdio.h>
#if PY_VERSION_HEX >= 0x030e0000
#include <internal/pycore_frame.h>
#include <internal/pycore_interpframe_structs.h>
#include <internal/pycore_stackref.h>
#elif PY_VERSION_HEX >= 0x030b0000
#include <internal/pycore_frame.h>
#else
#include <frameobject.h>
#endif
#if PY_VERSION_HEX >= 0x03090000
#include <internal/pycore_interp.h>
#include <internal/pycore_runtime.h>
#else
#include <internal/pycore_pystate.h>
#endif

#define OFF(name, type, field) \
	printf("\t\t." #name " = %zu,\n", offsetof(type, field))

int main(void)
{
	printf("\t{\n");
	printf("\t\t.major = %d, .minor = %d,\n", PY_MAJOR_VERSION,
	       PY_MINOR_VERSION);
	OFF(runtime_interpreters_head, _PyRuntimeState, interpreters.head);
	OFF(interp_next, PyInterpreterState, next);
	OFF(tstate_next, PyThreadState, next);
	OFF(tstate_thread_id, PyThreadState, thread_id);
#if PY_VERSION_HEX >= 0x030b0000
	OFF(interp_threads_head, PyInterpreterState, threads.head);
#else
	OFF(interp_threads_head, PyInterpreterState, tstate_head);
#endif
#if PY_VERSION_HEX >= 0x030b0000
	OFF(tstate_native_thread_id, PyThreadState, native_thread_id);
#else
	printf("\t\t.tstate_native_thread_id = -1,\n");
#endif

#if PY_VERSION_HEX >= 0x030d0000
	printf("\t\t.linetable_kind = PY_LT_LOCATIONS,\n");
	printf("\t\t.instr_kind = PY_INSTR_POINTER,\n");
#if PY_VERSION_HEX >= 0x030e0000
	/* interpreter-owned entry frames and C-stack shims: both skipped */
	printf("\t\t.owner_cstack = %d,\n", FRAME_OWNED_BY_INTERPRETER);
	printf("\t\t.code_ptr_tag_mask = %d,\n", (int)Py_TAG_BITS);
#else
	printf("\t\t.owner_cstack = %d,\n", FRAME_OWNED_BY_CSTACK);
#endif
	OFF(tstate_frame, PyThreadState, current_frame);
	printf("\t\t.cframe_current_frame = -1,\n");
	OFF(frame_code, _PyInterpreterFrame, f_executable);
	OFF(frame_previous, _PyInterpreterFrame, previous);
	OFF(frame_instr, _PyInterpreterFrame, instr_ptr);
	OFF(frame_owner, _PyInterpreterFrame, owner);
#elif PY_VERSION_HEX >= 0x030b0000
	printf("\t\t.linetable_kind = PY_LT_LOCATIONS,\n");
	printf("\t\t.instr_kind = PY_INSTR_POINTER,\n");
#if PY_VERSION_HEX >= 0x030c0000
	printf("\t\t.owner_cstack = %d,\n", FRAME_OWNED_BY_CSTACK);
#else
	printf("\t\t.owner_cstack = -1,\n");
#endif
	OFF(tstate_frame, PyThreadState, cframe);
	OFF(cframe_current_frame, _PyCFrame, current_frame);
	OFF(frame_code, _PyInterpreterFrame, f_code);
	OFF(frame_previous, _PyInterpreterFrame, previous);
	OFF(frame_instr, _PyInterpreterFrame, prev_instr);
	OFF(frame_owner, _PyInterpreterFrame, owner);
#else
	printf("\t\t.linetable_kind = %s,\n",
	       PY_VERSION_HEX >= 0x030a0000 ? "PY_LT_310" : "PY_LT_LNOTAB");
	printf("\t\t.instr_kind = %s,\n", PY_VERSION_HEX >= 0x030a0000
						  ? "PY_INSTR_LASTI_UNITS"
						  : "PY_INSTR_LASTI_BYTES");
	printf("\t\t.owner_cstack = -1,\n");
	OFF(tstate_frame, PyThreadState, frame);
	printf("\t\t.cframe_current_frame = -1,\n");
	OFF(frame_code, PyFrameObject, f_code);
	OFF(frame_previous, PyFrameObject, f_back);
	OFF(frame_instr, PyFrameObject, f_lasti);
	printf("\t\t.frame_owner = -1,\n");
#endif
	/* the GIL: in _PyRuntime up to 3.11, behind interp->ceval.gil after */
#if PY_VERSION_HEX >= 0x030c0000
	printf("\t\t.gil_runtime = -1,\n");
	OFF(interp_gil_ptr, PyInterpreterState, ceval.gil);
#else
	OFF(gil_runtime, _PyRuntimeState, ceval.gil);
	printf("\t\t.interp_gil_ptr = -1,\n");
#endif
	OFF(gil_last_holder, struct _gil_runtime_state, last_holder);
	/* the collector's "collecting" flag: in _PyRuntime in 3.8 */
#if PY_VERSION_HEX >= 0x03090000
	printf("\t\t.gc_runtime_collecting = -1,\n");
	OFF(interp_gc_collecting, PyInterpreterState, gc.collecting);
#else
	OFF(gc_runtime_collecting, _PyRuntimeState, gc.collecting);
	printf("\t\t.interp_gc_collecting = -1,\n");
#endif
	printf("\t\t.gc_stats_back = %zu,\n",
	       offsetof(struct _gc_runtime_state, collecting) -
		       offsetof(struct _gc_runtime_state, generation_stats));
	printf("\t\t.gil_size = %zu,\n", sizeof(struct _gil_runtime_state));
	OFF(code_filename, PyCodeObject, co_filename);
	OFF(code_name, PyCodeObject, co_name);
#if PY_VERSION_HEX >= 0x030b0000
	OFF(code_qualname, PyCodeObject, co_qualname);
	OFF(code_linetable, PyCodeObject, co_linetable);
	OFF(code_adaptive, PyCodeObject, co_code_adaptive);
#else
	printf("\t\t.code_qualname = -1,\n");
#if PY_VERSION_HEX >= 0x030a0000
	OFF(code_linetable, PyCodeObject, co_linetable);
#else
	OFF(code_linetable, PyCodeObject, co_lnotab);
#endif
	printf("\t\t.code_adaptive = %zu,\n", sizeof(PyCodeObject));
#endif
	OFF(code_firstlineno, PyCodeObject, co_firstlineno);
	OFF(unicode_state, PyASCIIObject, state);
	OFF(unicode_length, PyASCIIObject, length);
	printf("\t\t.unicode_ascii_data = %zu,\n", sizeof(PyASCIIObject));
	printf("\t\t.unicode_compact_data = %zu,\n",
	       sizeof(PyCompactUnicodeObject));
	/* a frame's locals (then its cells and frees), the names of them */
#if PY_VERSION_HEX >= 0x030b0000
	OFF(frame_localsplus, _PyInterpreterFrame, localsplus);
	OFF(code_localsplusnames, PyCodeObject, co_localsplusnames);
#else
	OFF(frame_localsplus, PyFrameObject, f_localsplus);
	OFF(code_localsplusnames, PyCodeObject, co_varnames);
#endif
	OFF(tuple_size, PyVarObject, ob_size);
	OFF(tuple_items, PyTupleObject, ob_item);
	OFF(float_value, PyFloatObject, ob_fval);
	OFF(bytes_size, PyVarObject, ob_size);
	OFF(bytes_data, PyBytesObject, ob_sval);
	OFF(object_type, PyObject, ob_type);
	printf("\t},\n");
	return 0;
}
