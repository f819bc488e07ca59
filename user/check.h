/* SPDX-License-Identifier: MIT */
#ifndef CHECK_H
#define CHECK_H

#include "options.h"

/*
 * `asyncprobe check`: load and attach every variant of the BPF programs
 * this kernel supports, say per feature what works and what a run would
 * use.  0 when asyncprobe can run here, 1 when it cannot.
 */
int check__run(const struct ap_options *o);

#endif
