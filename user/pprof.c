// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "pprof.h"
#include "profile.pb-c.h"

typedef Perftools__Profiles__Profile Profile;
typedef Perftools__Profiles__Sample Sample;
typedef Perftools__Profiles__Location Location;
typedef Perftools__Profiles__Line Line;
typedef Perftools__Profiles__Function Function;
typedef Perftools__Profiles__ValueType ValueType;
typedef Perftools__Profiles__Label Label;

/* Everything the profile points to, freed at once. */
struct build {
	char **strs;
	size_t nstrs, capstrs;
	Function **funcs;
	size_t nfuncs, capfuncs;
	Location **locs;
	size_t nlocs, caplocs;
	int failed;
};

static int grow(void **arr, size_t n, size_t *cap, size_t size)
{
	if (n < *cap)
		return 0;
	size_t c = *cap ? *cap * 2 : 64;
	void *p = realloc(*arr, c * size);

	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = c;
	return 0;
}

/* The string table index of @s, added when new (index 0 is ""). */
static int64_t str_id(struct build *b, const char *s)
{
	char *copy;

	for (size_t i = 0; i < b->nstrs; i++)
		if (!strcmp(b->strs[i], s))
			return (int64_t)i;
	copy = strdup(s);
	if (!copy ||
	    grow((void **)&b->strs, b->nstrs, &b->capstrs, sizeof(*b->strs))) {
		free(copy);
		b->failed = 1;
		return 0;
	}
	b->strs[b->nstrs] = copy;
	return (int64_t)b->nstrs++;
}

static uint64_t func_id(struct build *b, const char *name, const char *file)
{
	int64_t n = str_id(b, name), f = str_id(b, file);
	Function *fn;

	for (size_t i = 0; i < b->nfuncs; i++)
		if (b->funcs[i]->name == n && b->funcs[i]->filename == f)
			return b->funcs[i]->id;
	fn = malloc(sizeof(*fn));
	if (!fn || grow((void **)&b->funcs, b->nfuncs, &b->capfuncs,
			sizeof(*b->funcs))) {
		free(fn);
		b->failed = 1;
		return 0;
	}
	perftools__profiles__function__init(fn);
	fn->id = b->nfuncs + 1;
	fn->name = fn->system_name = n;
	fn->filename = f;
	b->funcs[b->nfuncs++] = fn;
	return fn->id;
}

/* One location per function and line: Python frames have no address. */
static uint64_t loc_id(struct build *b, const char *name, const char *file,
		       long line)
{
	uint64_t fid = func_id(b, name, file);
	Location *loc;
	Line *ln;

	for (size_t i = 0; i < b->nlocs; i++)
		if (b->locs[i]->line[0]->function_id == fid &&
		    b->locs[i]->line[0]->line == line)
			return b->locs[i]->id;
	loc = malloc(sizeof(*loc) + sizeof(Line *) + sizeof(Line));
	if (!loc ||
	    grow((void **)&b->locs, b->nlocs, &b->caplocs, sizeof(*b->locs))) {
		free(loc);
		b->failed = 1;
		return 0;
	}
	/* the location, its one-entry line array and the line, in one */
	perftools__profiles__location__init(loc);
	loc->line = (Line **)(loc + 1);
	ln = (Line *)(loc->line + 1);
	perftools__profiles__line__init(ln);
	ln->function_id = fid;
	ln->line = line;
	loc->line[0] = ln;
	loc->n_line = 1;
	loc->id = b->nlocs + 1;
	b->locs[b->nlocs++] = loc;
	return loc->id;
}

/* gzip @len bytes of @buf to @out. */
static int gzip_write(FILE *out, const uint8_t *buf, size_t len)
{
	z_stream z = { 0 };
	uint8_t chunk[65536];
	int rc;

	if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY))
		return -ENOMEM;
	z.next_in = (uint8_t *)buf;
	z.avail_in = (uInt)len;
	do {
		z.next_out = chunk;
		z.avail_out = sizeof(chunk);
		rc = deflate(&z, Z_FINISH);
		if (rc == Z_STREAM_ERROR)
			break;
		if (fwrite(chunk, 1, sizeof(chunk) - z.avail_out, out) !=
		    sizeof(chunk) - z.avail_out) {
			rc = Z_ERRNO;
			break;
		}
	} while (rc != Z_STREAM_END);
	deflateEnd(&z);
	return rc == Z_STREAM_END ? 0 : -EIO;
}

int pprof__write(FILE *out, const struct pprof_sample *s, size_t n,
		 int64_t time_ns, int64_t duration_ns)
{
	Profile p = PERFTOOLS__PROFILES__PROFILE__INIT;
	ValueType types[2], *type_ptrs[2] = { &types[0], &types[1] };
	struct build b = { 0 };
	Sample *samples = calloc(n ? n : 1, sizeof(*samples));
	Sample **sample_ptrs = calloc(n ? n : 1, sizeof(*sample_ptrs));
	Label *labels = calloc(n ? 2 * n : 1, sizeof(*labels));
	Label **label_ptrs = calloc(n ? 2 * n : 1, sizeof(*label_ptrs));
	int64_t *values = calloc(n ? 2 * n : 1, sizeof(*values));
	uint64_t **loc_lists = calloc(n ? n : 1, sizeof(*loc_lists));
	uint8_t *packed = NULL;
	size_t len;
	int err = -ENOMEM;

	if (!samples || !sample_ptrs || !labels || !label_ptrs || !values ||
	    !loc_lists)
		goto cleanup;
	str_id(&b, "");
	for (int i = 0; i < 2; i++) {
		perftools__profiles__value_type__init(&types[i]);
		types[i].type = str_id(&b, i ? "blocked" : "stalled");
		types[i].unit = str_id(&b, "nanoseconds");
	}
	for (size_t i = 0; i < n; i++) {
		Sample *sm = &samples[i];
		int k = 0, nl = s[i].nframes + !!s[i].syscall;

		perftools__profiles__sample__init(sm);
		loc_lists[i] = calloc(nl ? (size_t)nl : 1, sizeof(uint64_t));
		if (!loc_lists[i])
			goto cleanup;
		if (s[i].syscall) {
			char name[96];

			snprintf(name, sizeof(name), "[%s]", s[i].syscall);
			loc_lists[i][k++] = loc_id(&b, name, "", 0);
		}
		for (int j = 0; j < s[i].nframes; j++)
			loc_lists[i][k++] = loc_id(&b, s[i].frames[j].function,
						   s[i].frames[j].file,
						   s[i].frames[j].line);
		sm->location_id = loc_lists[i];
		sm->n_location_id = (size_t)k;
		values[2 * i] = s[i].stalled_ns;
		values[2 * i + 1] = s[i].blocked_ns;
		sm->value = &values[2 * i];
		sm->n_value = 2;
		for (int j = 0; j < 2; j++) {
			Label *l = &labels[2 * i + j];

			perftools__profiles__label__init(l);
			l->key = str_id(&b, j ? "tid" : "pid");
			l->num = j ? s[i].tid : s[i].pid;
			label_ptrs[2 * i + j] = l;
		}
		sm->label = &label_ptrs[2 * i];
		sm->n_label = 2;
		sample_ptrs[i] = sm;
	}
	if (b.failed)
		goto cleanup;
	p.sample_type = type_ptrs;
	p.n_sample_type = 2;
	p.sample = sample_ptrs;
	p.n_sample = n;
	p.location = b.locs;
	p.n_location = b.nlocs;
	p.function = b.funcs;
	p.n_function = b.nfuncs;
	p.string_table = b.strs;
	p.n_string_table = b.nstrs;
	p.time_nanos = time_ns;
	p.duration_nanos = duration_ns;
	p.default_sample_type = types[0].type;
	len = perftools__profiles__profile__get_packed_size(&p);
	packed = malloc(len ? len : 1);
	if (!packed)
		goto cleanup;
	perftools__profiles__profile__pack(&p, packed);
	err = gzip_write(out, packed, len);
cleanup:
	for (size_t i = 0; loc_lists && i < n; i++)
		free(loc_lists[i]);
	for (size_t i = 0; i < b.nstrs; i++)
		free(b.strs[i]);
	for (size_t i = 0; i < b.nfuncs; i++)
		free(b.funcs[i]);
	for (size_t i = 0; i < b.nlocs; i++)
		free(b.locs[i]);
	free(b.strs);
	free(b.funcs);
	free(b.locs);
	free(loc_lists);
	free(values);
	free(label_ptrs);
	free(labels);
	free(sample_ptrs);
	free(samples);
	free(packed);
	return err;
}
