/* SPDX-License-Identifier: MIT */
/*
 * Counters by call site with bounded label sets for the exporter: the top
 * N sites (by total count) are exported by name, the rest are folded into
 * one "other" row per key.  Every exported row only ever grows: a site
 * that is promoted starts a new series at 0, one that is demoted stops
 * (its later counts go to "other"), so rate() stays exact and the rows of
 * a key always add up to its total since the start.
 */
#ifndef SITETAB_H
#define SITETAB_H

#include <stdint.h>

#define SITETAB_KEY_MAX 32
#define SITETAB_SITE_MAX 256

struct sitetab;

/* A table of at most @max sites (plus one "other" row per key). */
struct sitetab *sitetab__new(int max);
void sitetab__free(struct sitetab *t);

/* One more event of @site under @key (e.g. a syscall name; "" if none),
 * with @value added to its sum (e.g. seconds). */
void sitetab__add(struct sitetab *t, const char *key, const char *site,
		  double value);

/* Choose the exported sites: the @top most counted (ties: the older).
 * Call once per scrape, before sitetab__foreach. */
void sitetab__promote(struct sitetab *t, int top);

/* Every exported row: the promoted sites, then one "other" row per key
 * that has anything folded into it (@site is "other" there). */
typedef void (*sitetab_cb)(void *ctx, const char *key, const char *site,
			   uint64_t count, double sum);
void sitetab__foreach(const struct sitetab *t, sitetab_cb cb, void *ctx);

/* Events of sites that did not fit in the table (counted under "other"). */
uint64_t sitetab__overflow(const struct sitetab *t);

#endif
