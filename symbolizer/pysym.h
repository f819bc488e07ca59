/* SPDX-License-Identifier: MIT */
/* Python frames (code object + instruction) -> function, file, line. */
#ifndef PYSYM_H
#define PYSYM_H

#include <stdint.h>
#include "pytarget.h"

#define PYSYM_NAME_MAX 256
#define PYSYM_PATH_MAX 512

struct py_frame_info {
	char function[PYSYM_NAME_MAX]; /* co_qualname, else co_name */
	char file[PYSYM_PATH_MAX];
	int line; /* -1: unknown */
};

struct py_symbolizer;

struct py_symbolizer *pysym__new(const struct py_target *t);
void pysym__free(struct py_symbolizer *s);

/* Entries older than the current epoch are re-validated against the
 * target before use: code objects die and their addresses are reused. */
void pysym__new_epoch(struct py_symbolizer *s);

/* Resolve one frame.  On a failed read the frame is "<unknown>" with line
 * -1 and -EFAULT is returned; @out is always filled. */
int pysym__resolve(struct py_symbolizer *s, const struct ap_frame *f,
		   struct py_frame_info *out);

/* A code object's function and file, and the line it is defined at. */
int pysym__code(struct py_symbolizer *s, uint64_t code,
		struct py_frame_info *out);

/* Decode a PyUnicodeObject of the target into UTF-8 (capped); exposed for
 * tests.  @hdr holds the object's first bytes as read from the target. */
int pysym__decode_unicode(const struct py_offsets *o, pid_t pid, uint64_t addr,
			  char *out, size_t outlen);

#endif
