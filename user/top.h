/* SPDX-License-Identifier: MIT */
/*
 * `asyncprobe top`: a live view, refreshed every second, of each loop's
 * utilization, lag, what runs now, tasks per second, and the worst
 * recent stalls and blocking syscalls.
 */
#ifndef TOP_H
#define TOP_H

#include <stdbool.h>
#include <stdio.h>
#include "collector.h"

struct top;

struct top *top__new(void);
void top__free(struct top *t);

/* One screen of @n watched targets; @tty: clear the terminal first. */
void top__draw(struct top *t, struct collector **cs, int n, FILE *out,
	       bool tty);

#endif
