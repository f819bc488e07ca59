/* SPDX-License-Identifier: MIT */
/*
 * Prints one row of symbolizer/pyversions.c for the CPython whose internal
 * headers it is compiled against.  Build and run it per interpreter:
 *
 *   cc -I$PREFIX/include/python3.X -I$PREFIX/include/python3.X/internal \
 *      symbolizer/gen/pyoffsets_gen.c -o /tmp/gen && /tmp/gen
 *
 * The row is data: commit its output, never include CPython headers in the
 * tool itself.
 */
#define Py_BUILD_CORE 1
#include <Python.h>
#include <stddef.h>
#include <stdio.h>
#include <internal/pycore_frame.h>
#include <internal/pycore_interp.h>
#include <internal/pycore_runtime.h>

int main(void)
{
	printf("\t{\n");
	printf("\t\t.major = %d, .minor = %d,\n", PY_MAJOR_VERSION, PY_MINOR_VERSION);
	printf("\t\t.runtime_interpreters_head = %zu,\n",
	       offsetof(_PyRuntimeState, interpreters.head));
	printf("\t\t.interp_next = %zu,\n", offsetof(PyInterpreterState, next));
	printf("\t\t.interp_threads_head = %zu,\n",
	       offsetof(PyInterpreterState, threads.head));
	printf("\t\t.tstate_next = %zu,\n", offsetof(PyThreadState, next));
	printf("\t\t.tstate_native_thread_id = %zu,\n",
	       offsetof(PyThreadState, native_thread_id));
	printf("\t\t.tstate_frame = %zu,\n", offsetof(PyThreadState, cframe));
	printf("\t\t.cframe_current_frame = %zu,\n",
	       offsetof(_PyCFrame, current_frame));
	printf("\t\t.frame_code = %zu,\n", offsetof(_PyInterpreterFrame, f_code));
	printf("\t\t.frame_previous = %zu,\n",
	       offsetof(_PyInterpreterFrame, previous));
	printf("\t\t.frame_instr = %zu,\n",
	       offsetof(_PyInterpreterFrame, prev_instr));
	printf("\t\t.frame_owner = %zu,\n", offsetof(_PyInterpreterFrame, owner));
	printf("\t\t.code_filename = %zu,\n", offsetof(PyCodeObject, co_filename));
	printf("\t\t.code_name = %zu,\n", offsetof(PyCodeObject, co_name));
	printf("\t\t.code_qualname = %zu,\n", offsetof(PyCodeObject, co_qualname));
	printf("\t\t.code_firstlineno = %zu,\n",
	       offsetof(PyCodeObject, co_firstlineno));
	printf("\t\t.code_linetable = %zu,\n", offsetof(PyCodeObject, co_linetable));
	printf("\t\t.code_adaptive = %zu,\n",
	       offsetof(PyCodeObject, co_code_adaptive));
	printf("\t\t.unicode_state = %zu,\n", offsetof(PyASCIIObject, state));
	printf("\t\t.unicode_length = %zu,\n", offsetof(PyASCIIObject, length));
	printf("\t\t.unicode_ascii_data = %zu,\n", sizeof(PyASCIIObject));
	printf("\t\t.unicode_compact_data = %zu,\n", sizeof(PyCompactUnicodeObject));
	printf("\t\t.bytes_size = %zu,\n", offsetof(PyVarObject, ob_size));
	printf("\t\t.bytes_data = %zu,\n", offsetof(PyBytesObject, ob_sval));
	printf("\t\t.object_type = %zu,\n", offsetof(PyObject, ob_type));
	printf("\t},\n");
	return 0;
}
