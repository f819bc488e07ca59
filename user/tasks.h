/* SPDX-License-Identifier: MIT */
/* `asyncprobe tasks -p PID`: every asyncio task, its coroutine stack and
 * who awaits whom, read once from the running process. */
#ifndef TASKS_H
#define TASKS_H

#include "options.h"

int tasks__dump(const struct ap_options *o);

#endif
