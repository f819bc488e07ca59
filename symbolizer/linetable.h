/* SPDX-License-Identifier: MIT */
/* CPython line tables: instruction offset -> source line. */
#ifndef LINETABLE_H
#define LINETABLE_H

#include <stddef.h>
#include <stdint.h>
#include "pyversions.h"

/*
 * The line of the instruction at byte offset @offset of a code object's
 * bytecode, decoded from its line table @tab of @len bytes (co_lnotab,
 * 3.10's co_linetable or the 3.11+ location table, per @kind).  Returns
 * -1 when the table has no line for it or is malformed; never reads
 * outside @tab.
 */
int py_linetable__line(enum py_linetable_kind kind, const uint8_t *tab,
		       size_t len, int firstlineno, long offset);

#endif
