// SPDX-License-Identifier: MIT
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sitetab.h"

#define MAX_KEYS 128 /* distinct keys (syscalls): bounded by the kernel */

struct site_row {
	char key[SITETAB_KEY_MAX];
	char site[SITETAB_SITE_MAX];
	uint64_t count; /* since the start */
	double sum;
	bool exported;
	uint64_t base; /* count when its current series began */
	double base_sum;
	/* counted in "other" since the last scrape: not exported yet, so a
	 * site promoted now can take them along */
	uint64_t pending;
	double pending_sum;
	/* what the last scrape showed while exported */
	uint64_t shown;
	double shown_sum;
	uint64_t order; /* first seen: breaks ties */
};

struct key_row {
	char key[SITETAB_KEY_MAX];
	uint64_t other; /* counted while its site was not exported */
	double other_sum;
};

struct sitetab {
	int max, n, nkeys;
	uint64_t next_order, overflow;
	struct site_row *rows;
	struct key_row keys[MAX_KEYS];
};

struct sitetab *sitetab__new(int max)
{
	struct sitetab *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->rows = calloc(max > 0 ? (size_t)max : 1, sizeof(*t->rows));
	if (!t->rows) {
		free(t);
		return NULL;
	}
	t->max = max;
	return t;
}

void sitetab__free(struct sitetab *t)
{
	if (!t)
		return;
	free(t->rows);
	free(t);
}

static struct key_row *key_get(struct sitetab *t, const char *key)
{
	for (int i = 0; i < t->nkeys; i++)
		if (!strcmp(t->keys[i].key, key))
			return &t->keys[i];
	if (t->nkeys >= MAX_KEYS)
		return NULL;
	snprintf(t->keys[t->nkeys].key, SITETAB_KEY_MAX, "%s", key);
	return &t->keys[t->nkeys++];
}

void sitetab__add(struct sitetab *t, const char *key, const char *site,
		  double value)
{
	struct site_row *r = NULL;
	struct key_row *k;
	char kbuf[SITETAB_KEY_MAX], sbuf[SITETAB_SITE_MAX];

	if (!t)
		return;
	/* compare as stored: long names are cut the same way every time */
	snprintf(kbuf, sizeof(kbuf), "%s", key ? key : "");
	snprintf(sbuf, sizeof(sbuf), "%s", site ? site : "");
	k = key_get(t, kbuf);
	if (!k) {
		t->overflow++;
		return;
	}
	for (int i = 0; i < t->n && !r; i++)
		if (!strcmp(t->rows[i].site, sbuf) &&
		    !strcmp(t->rows[i].key, kbuf))
			r = &t->rows[i];
	if (!r && t->n < t->max) {
		r = &t->rows[t->n++];
		memcpy(r->key, kbuf, sizeof(kbuf));
		memcpy(r->site, sbuf, sizeof(sbuf));
		r->order = t->next_order++;
	}
	if (!r) {
		t->overflow++;
		k->other++;
		k->other_sum += value;
		return;
	}
	r->count++;
	r->sum += value;
	if (!r->exported) {
		k->other++;
		k->other_sum += value;
		r->pending++;
		r->pending_sum += value;
	}
}

/* @a ranks before @b: more counted, or as many and seen first */
static bool ranks_before(const struct site_row *a, const struct site_row *b)
{
	return a->count > b->count ||
	       (a->count == b->count && a->order < b->order);
}

void sitetab__promote(struct sitetab *t, int top)
{
	if (!t)
		return;
	for (int i = 0; i < t->n; i++) {
		struct site_row *r = &t->rows[i];
		int better = 0;
		bool in_top;

		for (int j = 0; j < t->n && better < top; j++)
			if (j != i && ranks_before(&t->rows[j], r))
				better++;
		in_top = better < top && r->count > 0;
		if (in_top && !r->exported) {
			struct key_row *k = key_get(t, r->key);

			/* a new series; what "other" has already shown
			 * stays there */
			r->exported = true;
			r->base = r->count - r->pending;
			r->base_sum = r->sum - r->pending_sum;
			if (k) {
				k->other -= r->pending;
				k->other_sum -= r->pending_sum;
			}
		} else if (!in_top && r->exported) {
			struct key_row *k = key_get(t, r->key);

			/* what came since the last scrape goes to "other" */
			r->exported = false;
			if (k) {
				k->other += r->count - r->base - r->shown;
				k->other_sum +=
					r->sum - r->base_sum - r->shown_sum;
			}
		}
	}
	/* this scrape shows the rest in "other" */
	for (int i = 0; i < t->n; i++) {
		struct site_row *r = &t->rows[i];

		r->pending = 0;
		r->pending_sum = 0;
		r->shown = r->exported ? r->count - r->base : 0;
		r->shown_sum = r->exported ? r->sum - r->base_sum : 0;
	}
}

void sitetab__foreach(const struct sitetab *t, sitetab_cb cb, void *ctx)
{
	if (!t)
		return;
	for (int i = 0; i < t->n; i++) {
		const struct site_row *r = &t->rows[i];

		if (r->exported)
			cb(ctx, r->key, r->site, r->count - r->base,
			   r->sum - r->base_sum);
	}
	for (int i = 0; i < t->nkeys; i++)
		if (t->keys[i].other)
			cb(ctx, t->keys[i].key, "other", t->keys[i].other,
			   t->keys[i].other_sum);
}

uint64_t sitetab__overflow(const struct sitetab *t)
{
	return t ? t->overflow : 0;
}
