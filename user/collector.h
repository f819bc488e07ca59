/* SPDX-License-Identifier: MIT */
/* Attach to one target, turn BPF events into findings, print a summary. */
#ifndef COLLECTOR_H
#define COLLECTOR_H

#include "options.h"

/* Runs until the duration ends, a signal, or the target exits.
 * Returns the process exit code: 0 on a normal end, 1 on failure. */
int collector__run(const struct ap_options *o);

#endif
