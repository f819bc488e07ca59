// SPDX-License-Identifier: MIT
/*
 * _Py_DebugOffsets: the layout table a 3.13+ target carries at the start
 * of _PyRuntime, read and validated before anything trusts it (a target
 * can write any values there).
 *
 * Input: the bytes read from the target (py_target__open reads 1024),
 * copied to a buffer of exactly that size.  Seeds: the images of real
 * 3.13, 3.14 and 3.15 interpreters (tests/unit/fixtures).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "pydebug.h"
#include "pyversions.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct py_offsets out;
	char err[256];
	uint8_t *blob = malloc(size ? size : 1);

	if (!blob)
		return 0;
	memcpy(blob, data, size);
	py_debug__parse(blob, size, &out, err, sizeof(err));
	free(blob);
	return 0;
}
