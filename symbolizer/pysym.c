// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "linetable.h"
#include "pysym.h"

#define CACHE_SIZE 4096		  /* entries, power of two */
#define LINETABLE_MAX (64 * 1024) /* bytes; larger tables are garbage */
#define CACHE_BYTES_MAX (16 * 1024 * 1024) /* line tables held at most */
#define CODE_HDR_MAX 512 /* bytes of a code object read at once */

struct code_entry {
	uint64_t code; /* 0: empty */
	uint64_t epoch;
	/* fingerprint to validate a hit */
	uint64_t filename, name, qualname, linetable;
	int firstlineno;
	char function[PYSYM_NAME_MAX];
	char file[PYSYM_PATH_MAX];
	uint8_t *table;
	size_t table_len;
};

struct py_symbolizer {
	const struct py_target *t;
	uint64_t epoch;
	size_t table_bytes; /* sum of cached line tables */
	struct code_entry *cache;
};

struct py_symbolizer *pysym__new(const struct py_target *t)
{
	struct py_symbolizer *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->t = t;
	s->epoch = 1;
	s->cache = calloc(CACHE_SIZE, sizeof(*s->cache));
	if (!s->cache) {
		free(s);
		return NULL;
	}
	return s;
}

void pysym__free(struct py_symbolizer *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < CACHE_SIZE; i++)
		free(s->cache[i].table);
	free(s->cache);
	free(s);
}

void pysym__new_epoch(struct py_symbolizer *s)
{
	s->epoch++;
}

/* Keep the cache's memory bounded whatever the target holds. */
static void cache_flush(struct py_symbolizer *s)
{
	for (size_t i = 0; i < CACHE_SIZE; i++) {
		free(s->cache[i].table);
		memset(&s->cache[i], 0, sizeof(s->cache[i]));
	}
	s->table_bytes = 0;
}

/* Append code point @cp as UTF-8; false when it does not fit. */
static bool put_utf8(char *out, size_t outlen, size_t *pos, uint32_t cp)
{
	char b[4];
	size_t n;

	if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		cp = 0xfffd;
	if (cp < 0x80) {
		b[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | (cp >> 6));
		b[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xe0 | (cp >> 12));
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (char)(0xf0 | (cp >> 18));
		b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	if (*pos + n >= outlen)
		return false;
	memcpy(out + *pos, b, n);
	*pos += n;
	return true;
}

int pysym__decode_unicode(const struct py_offsets *o, pid_t pid, uint64_t addr,
			  char *out, size_t outlen)
{
	uint8_t data[PYSYM_PATH_MAX * 4];
	uint32_t state;
	int64_t length;
	unsigned int kind, width;
	size_t pos = 0, count, max_chars;
	uint64_t where;
	bool ascii, compact;
	int err;

	if (!outlen)
		return -EINVAL;
	out[0] = '\0';
	if ((err = proc_read(pid, addr + o->unicode_length, &length,
			     sizeof(length))) ||
	    (err = proc_read(pid, addr + o->unicode_state, &state,
			     sizeof(state))))
		return err;
	/* state bits: interned:2, kind:3, compact:1, ascii:1 */
	kind = (state >> 2) & 7;
	compact = (state >> 5) & 1;
	ascii = (state >> 6) & 1;
	if (length < 0 || !compact || (kind != 1 && kind != 2 && kind != 4))
		return -EINVAL;
	width = kind;
	where = addr +
		(ascii ? o->unicode_ascii_data : o->unicode_compact_data);
	max_chars = sizeof(data) / width;
	if (max_chars > outlen - 1)
		max_chars = outlen - 1;
	count = (size_t)length < max_chars ? (size_t)length : max_chars;
	if ((err = proc_read(pid, where, data, count * width)))
		return err;
	for (size_t i = 0; i < count; i++) {
		uint32_t cp;

		if (width == 1)
			cp = data[i];
		else if (width == 2)
			cp = (uint32_t)data[2 * i] | (uint32_t)data[2 * i + 1]
							     << 8;
		else
			memcpy(&cp, data + 4 * i, 4);
		if (ascii && cp > 0x7f)
			return -EINVAL;
		if (!put_utf8(out, outlen, &pos, cp))
			break;
	}
	out[pos] = '\0';
	return 0;
}

static uint64_t hdr_u64(const uint8_t *hdr, size_t off)
{
	uint64_t v;

	memcpy(&v, hdr + off, sizeof(v));
	return v;
}

static int code_load(struct py_symbolizer *s, uint64_t code,
		     struct code_entry *e)
{
	const struct py_offsets *o = s->t->off;
	pid_t pid = s->t->pid;
	uint8_t hdr[CODE_HDR_MAX];
	size_t hdr_len = o->code_adaptive;
	int64_t tlen;
	int32_t first;
	int err;

	if (hdr_len > sizeof(hdr))
		return -EINVAL;
	if ((err = proc_read(pid, code, hdr, hdr_len)))
		return err;
	if (s->table_bytes + LINETABLE_MAX > CACHE_BYTES_MAX)
		cache_flush(s);
	s->table_bytes -= e->table_len;
	free(e->table);
	memset(e, 0, sizeof(*e));
	e->filename = hdr_u64(hdr, o->code_filename);
	e->name = hdr_u64(hdr, o->code_name);
	e->qualname = o->code_qualname >= 0
			      ? hdr_u64(hdr, (size_t)o->code_qualname)
			      : 0;
	e->linetable = hdr_u64(hdr, o->code_linetable);
	memcpy(&first, hdr + o->code_firstlineno, sizeof(first));
	e->firstlineno = first;

	if (!e->qualname ||
	    pysym__decode_unicode(o, pid, e->qualname, e->function,
				  sizeof(e->function)) ||
	    !e->function[0])
		if ((err = pysym__decode_unicode(o, pid, e->name, e->function,
						 sizeof(e->function))))
			return err;
	if ((err = pysym__decode_unicode(o, pid, e->filename, e->file,
					 sizeof(e->file))))
		return err;

	if (proc_read(pid, e->linetable + o->bytes_size, &tlen, sizeof(tlen)) ||
	    tlen < 0 || tlen > LINETABLE_MAX)
		tlen = 0;
	if (tlen) {
		e->table = malloc((size_t)tlen);
		if (e->table && !proc_read(pid, e->linetable + o->bytes_data,
					   e->table, (size_t)tlen)) {
			e->table_len = (size_t)tlen;
			s->table_bytes += e->table_len;
		}
	}
	e->code = code;
	e->epoch = s->epoch;
	return 0;
}

/* Is the cached entry still the code object at that address? */
static bool code_valid(struct py_symbolizer *s, struct code_entry *e)
{
	const struct py_offsets *o = s->t->off;
	uint8_t hdr[CODE_HDR_MAX];
	int32_t first;

	if (e->epoch == s->epoch)
		return true;
	if (proc_read(s->t->pid, e->code, hdr, o->code_adaptive))
		return false;
	memcpy(&first, hdr + o->code_firstlineno, sizeof(first));
	if (hdr_u64(hdr, o->code_filename) != e->filename ||
	    hdr_u64(hdr, o->code_name) != e->name ||
	    hdr_u64(hdr, o->code_linetable) != e->linetable ||
	    first != e->firstlineno)
		return false;
	e->epoch = s->epoch;
	return true;
}

/* The cache entry of a code object, loaded if needed; NULL on failure
 * with @out set to "<unknown>". */
static struct code_entry *code_entry(struct py_symbolizer *s, uint64_t code,
				     struct py_frame_info *out, int *err)
{
	uint64_t h = (code >> 4) * 0x9e3779b97f4a7c15ULL;
	struct code_entry *e = &s->cache[h >> 52 & (CACHE_SIZE - 1)];

	*err = 0;
	if (e->code != code || !code_valid(s, e)) {
		*err = code_load(s, code, e);
		if (*err) {
			e->code = 0;
			snprintf(out->function, sizeof(out->function),
				 "<unknown>");
			out->file[0] = '\0';
			out->line = -1;
			return NULL;
		}
	}
	snprintf(out->function, sizeof(out->function), "%s", e->function);
	snprintf(out->file, sizeof(out->file), "%s", e->file);
	return e;
}

int pysym__code(struct py_symbolizer *s, uint64_t code,
		struct py_frame_info *out)
{
	int err;
	struct code_entry *e = code_entry(s, code, out, &err);

	if (!e)
		return err;
	out->line = e->firstlineno;
	return 0;
}

int pysym__resolve(struct py_symbolizer *s, const struct ap_frame *f,
		   struct py_frame_info *out)
{
	const struct py_offsets *o = s->t->off;
	struct code_entry *e;
	long offset;
	int err;

	e = code_entry(s, f->code, out, &err);
	if (!e)
		return err;
	/* byte offset of the instruction in the bytecode */
	switch (o->instr_kind) {
	case PY_INSTR_POINTER:
		offset = (long)(f->instr - (f->code + o->code_adaptive));
		break;
	case PY_INSTR_LASTI_UNITS:
		offset = (long)(int32_t)f->instr * 2;
		break;
	default:
		offset = (long)(int32_t)f->instr;
		break;
	}
	out->line = py_linetable__line(o->linetable_kind, e->table,
				       e->table_len, e->firstlineno, offset);
	return 0;
}
