// SPDX-License-Identifier: MIT
/*
 * Line tables as the target holds them: co_lnotab (<= 3.9), 3.10's
 * co_linetable, the 3.11+ location table.  The offset looked up comes
 * from the target too (a frame's instruction pointer or f_lasti).
 *
 * Input: kind (1 byte), co_firstlineno (i32), a count N (1 byte, up to
 * 16), N instruction offsets (i64), then the table.  Each offset is looked
 * up, and the ends of the range.  Seeds: the tables of real interpreters
 * 3.8-3.15 (tests/unit/fixtures), with offsets of real instructions.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "linetable.h"

#define MAX_OFFSETS 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const long ends[] = { LONG_MIN, -2, 0, 1, LONG_MAX };
	enum py_linetable_kind kind;
	int32_t first;
	size_t n, len;
	uint8_t *tab;

	if (size < 6)
		return 0;
	kind = (enum py_linetable_kind)(data[0] % 3 + 1);
	memcpy(&first, data + 1, sizeof(first));
	n = data[5] % (MAX_OFFSETS + 1);
	if (size < 6 + n * 8)
		return 0;
	/* a copy of exactly the table: ASan sees any read past it */
	len = size - 6 - n * 8;
	tab = malloc(len ? len : 1);
	if (!tab)
		return 0;
	memcpy(tab, data + 6 + n * 8, len);
	for (size_t i = 0; i < n; i++) {
		int64_t off;

		memcpy(&off, data + 6 + i * 8, sizeof(off));
		py_linetable__line(kind, tab, len, first, (long)off);
	}
	for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++)
		py_linetable__line(kind, tab, len, first, ends[i]);
	free(tab);
	return 0;
}
