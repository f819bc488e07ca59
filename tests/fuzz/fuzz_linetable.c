// SPDX-License-Identifier: MIT
/*
 * Line tables as the target holds them: co_lnotab (<= 3.9), 3.10's
 * co_linetable, the 3.11+ location table.  Input: kind (1 byte),
 * firstlineno (4), then the table; every offset up to the table's reach
 * is looked up.  Seeds: tables of real interpreters.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "linetable.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum py_linetable_kind kind;
	int32_t first;

	if (size < 5)
		return 0;
	kind = (enum py_linetable_kind)(data[0] % 3 + 1);
	memcpy(&first, data + 1, sizeof(first));
	data += 5;
	size -= 5;
	/* a copy of exactly @size bytes: ASan sees any read past it */
	uint8_t *tab = malloc(size ? size : 1);

	if (!tab)
		return 0;
	memcpy(tab, data, size);
	for (long off = -2; off < (long)size * 16 + 4; off += 2)
		py_linetable__line(kind, tab, size, first, off);
	py_linetable__line(kind, tab, size, first, 1L << 40);
	free(tab);
	return 0;
}
