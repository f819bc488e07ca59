/* SPDX-License-Identifier: MIT */
/*
 * Record files: a gzip stream (zlib) of JSON lines.  The first line is a
 * header {"event":"record","format":N,...}; the others are the events of
 * the live JSON output, in the order they were found.  `zcat FILE | jq`
 * reads one too.
 */
#ifndef RECORD_H
#define RECORD_H

#include <jansson.h>
#include <stdio.h>
#include "options.h"

#define RECORD_FORMAT 1 /* bumped when readers must change */

struct record;

/* Create @path and write its header.  NULL with the reason in @err. */
struct record *record__create(const char *path, const struct ap_options *o,
			      char *err, size_t errlen);

/* The stream the findings are written to. */
FILE *record__stream(struct record *r);

/* Make what was written so far readable from the file: a recorder that is
 * killed leaves a file that reads up to its last sync. */
void record__sync(struct record *r);

/* Finish the file and free @r; 0, or -1 with the reason on stderr. */
int record__close(struct record *r);

struct record_reader;

/* Open a record file and check its header.  NULL with the reason. */
struct record_reader *record__open(const char *path, char *err, size_t errlen);

/* The header (owned by the reader). */
const json_t *record__header(const struct record_reader *r);

/* The next event: 1 with *@ev (the caller's reference), 0 at the end,
 * -1 with the reason in @err (corrupt, truncated, not JSON). */
int record__next(struct record_reader *r, json_t **ev, char *err,
		 size_t errlen);

void record__free(struct record_reader *r);

#endif
