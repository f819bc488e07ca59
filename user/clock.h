/* SPDX-License-Identifier: MIT */
#ifndef CLOCK_H
#define CLOCK_H

#include <time.h>

/* CLOCK_MONOTONIC in seconds: what bpf_ktime_get_ns() counts, / 1e9. */
static inline double clock__mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

#endif
