/* SPDX-License-Identifier: MIT */
/*
 * `asyncprobe report FILE`: a record file as an incident summary (text),
 * the live JSON lines, folded stacks or a speedscope profile.
 */
#ifndef REPORT_H
#define REPORT_H

#include "options.h"

/* Read o->record, write o->format to o->output (stdout when NULL).
 * Returns the exit code: 0, or 1 with the reason on stderr. */
int report__run(const struct ap_options *o);

#endif
