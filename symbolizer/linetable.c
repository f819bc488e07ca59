// SPDX-License-Identifier: MIT
/*
 * Formats: CPython's Objects/lnotab_notes.txt (<= 3.10) and
 * Objects/locations.md (3.11+).  Tables come from another process and are
 * treated as hostile: every read is bounds-checked.
 */
#include <limits.h>
#include <stdbool.h>
#include "linetable.h"

/* Lines add up in a long: a hostile table's deltas overflow an int, and a
 * sum no int can hold is no line. */
static int line_of(long line)
{
	return line < INT_MIN || line > INT_MAX ? -1 : (int)line;
}

/* <= 3.9: pairs of (bytecode delta, signed line delta), offsets in bytes */
static int lnotab_line(const uint8_t *t, size_t len, long line, long offset)
{
	long addr = 0;

	for (size_t i = 0; i + 1 < len; i += 2) {
		addr += t[i];
		if (addr > offset)
			break;
		line += (int8_t)t[i + 1];
	}
	return line_of(line);
}

/* 3.10: pairs of (start delta, signed line delta); -128 means no line */
static int linetable310_line(const uint8_t *t, size_t len, long line,
			     long offset)
{
	long start = 0, end = 0, computed = line;

	for (size_t i = 0; i + 1 < len; i += 2) {
		int ldelta = (int8_t)t[i + 1];

		start = end;
		end += t[i];
		if (ldelta != -128)
			computed += ldelta;
		if (offset >= start && offset < end)
			return ldelta == -128 ? -1 : line_of(computed);
	}
	return -1;
}

static bool varint(const uint8_t *t, size_t len, size_t *i, unsigned int *out)
{
	unsigned int val = 0, shift = 0;
	uint8_t b;

	do {
		if (*i >= len || shift > 24)
			return false;
		b = t[(*i)++];
		val |= (unsigned int)(b & 63) << shift;
		shift += 6;
	} while (b & 64);
	*out = val;
	return true;
}

static bool svarint(const uint8_t *t, size_t len, size_t *i, int *out)
{
	unsigned int v;

	if (!varint(t, len, i, &v))
		return false;
	*out = (v & 1) ? -(int)(v >> 1) : (int)(v >> 1);
	return true;
}

/* 3.11+: entries of (code, length in code units) with a line delta */
static int locations_line(const uint8_t *t, size_t len, long line, long offset)
{
	long unit = offset / 2, pos = 0;
	size_t i = 0;

	if (unit < 0) /* a frame that has not started yet */
		return line_of(line);
	while (i < len) {
		uint8_t b = t[i++];
		int code = (b >> 3) & 15, delta = 0;
		long n = (b & 7) + 1;
		unsigned int skip;

		if (!(b & 0x80))
			return -1;
		switch (code) {
		case 15: /* no location */
			break;
		case 14: /* long form: line delta, end line, columns */
			if (!svarint(t, len, &i, &delta) ||
			    !varint(t, len, &i, &skip) ||
			    !varint(t, len, &i, &skip) ||
			    !varint(t, len, &i, &skip))
				return -1;
			break;
		case 13: /* no columns */
			if (!svarint(t, len, &i, &delta))
				return -1;
			break;
		case 10:
		case 11:
		case 12: /* one line forms: two column bytes */
			delta = code - 10;
			i += 2;
			break;
		default: /* short forms: same line, one column byte */
			i += 1;
			break;
		}
		if (i > len)
			return -1;
		line += delta;
		if (unit < pos + n)
			return code == 15 ? -1 : line_of(line);
		pos += n;
	}
	return -1;
}

int py_linetable__line(enum py_linetable_kind kind, const uint8_t *tab,
		       size_t len, int firstlineno, long offset)
{
	if (!tab && len)
		return -1;
	switch (kind) {
	case PY_LT_LNOTAB:
		return lnotab_line(tab, len, firstlineno, offset);
	case PY_LT_310:
		return linetable310_line(tab, len, firstlineno, offset);
	case PY_LT_LOCATIONS:
		return locations_line(tab, len, firstlineno, offset);
	}
	return -1;
}
