/* SPDX-License-Identifier: MIT */
#ifndef SESSION_H
#define SESSION_H

#include "options.h"

/* Watch the targets of @o (and serve /metrics with --listen) until the
 * duration ends, a signal, or every target has exited.  Returns the
 * process exit code: 0 on a normal end, 1 on failure.  With @rec (record
 * mode) the findings go to o->out, synced to the file every tick. */
struct record;
int session__run(const struct ap_options *o, struct record *rec);

#endif
