/* SPDX-License-Identifier: MIT */
/*
 * The HTTP side of the Prometheus exporter (libmicrohttpd), run from the
 * caller's own epoll loop: no threads, so a scrape reads the collectors'
 * state without locks.
 */
#ifndef EXPORTER_H
#define EXPORTER_H

#include <stdio.h>

struct exporter;

/* Writes a response body to @out; returns 0, or -1 to fail with a 500. */
typedef int (*exporter_write)(void *ctx, FILE *out);

/* Listen on @listen ([ADDR:]PORT, ADDR 127.0.0.1 when left out): /metrics
 * is written by @metrics, / by @page.  NULL with the reason in @err. */
struct exporter *exporter__new(const char *listen, exporter_write metrics,
			       exporter_write page, void *ctx, int verbose,
			       char *err, size_t errlen);

/* An fd that is readable when there is HTTP work: then exporter__run. */
int exporter__fd(const struct exporter *e);

/* Serve what is ready, and time out idle or slow connections. */
void exporter__run(struct exporter *e);

/* "ADDR:PORT" it listens on (the port chosen when PORT was 0). */
const char *exporter__address(const struct exporter *e);

void exporter__free(struct exporter *e);

#endif
