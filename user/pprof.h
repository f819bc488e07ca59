/* SPDX-License-Identifier: MIT */
/* Stacks weighted by time as a gzip-compressed pprof profile.proto. */
#ifndef PPROF_H
#define PPROF_H

#include <stdint.h>
#include <stdio.h>

struct pprof_frame {
	const char *function, *file;
	long line;
};

struct pprof_sample {
	const struct pprof_frame *frames; /* the leaf first */
	int nframes;
	const char *syscall; /* a blocking call's: its leaf; NULL: none */
	long pid, tid;
	int64_t stalled_ns, blocked_ns; /* the two sample values */
};

/* Write the profile of @n samples to @out; 0, or -errno. */
int pprof__write(FILE *out, const struct pprof_sample *s, size_t n,
		 int64_t time_ns, int64_t duration_ns);

#endif
