// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>
#include "record.h"
#include "version.h"

#define LINE_MAX_BYTES (16u << 20) /* no event is near this: corrupt */

struct record {
	char *path;
	gzFile gz;
	FILE *stream;
	int failed; /* errno of the first failed write */
};

static ssize_t gz_write(void *cookie, const char *buf, size_t len)
{
	struct record *r = cookie;
	int n;

	if (!len)
		return 0;
	n = gzwrite(r->gz, buf, (unsigned int)len);
	if (n <= 0) {
		if (!r->failed)
			r->failed = errno ? errno : EIO;
		return -1;
	}
	return n;
}

struct record *record__create(const char *path, const struct ap_options *o,
			      char *err, size_t errlen)
{
	cookie_io_functions_t io = { .write = gz_write };
	struct record *r = calloc(1, sizeof(*r));
	json_t *hdr, *argv;
	char *line;

	if (!r) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->path = strdup(path);
	r->gz = gzopen(path, "wb6");
	if (!r->path || !r->gz) {
		snprintf(err, errlen, "cannot create %s: %s", path,
			 strerror(errno ? errno : ENOMEM));
		goto fail;
	}
	r->stream = fopencookie(r, "w", io);
	if (!r->stream) {
		snprintf(err, errlen, "cannot create %s: %s", path,
			 strerror(errno));
		goto fail;
	}
	argv = json_array();
	for (int i = 0; i < o->argc; i++)
		json_array_append_new(argv, json_string(o->argv[i]));
	hdr = json_pack("{s:s, s:i, s:s, s:I, s:o, s:f, s:f}", "event",
			"record", "format", RECORD_FORMAT, "asyncprobe",
			AP_VERSION, "created", (json_int_t)time(NULL), "argv",
			argv, "stall_threshold_ms", o->stall_ms,
			"syscall_threshold_ms", o->syscall_ms);
	line = hdr ? json_dumps(hdr, JSON_COMPACT) : NULL;
	json_decref(hdr);
	if (!line) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	fprintf(r->stream, "%s\n", line);
	free(line);
	record__sync(r);
	return r;
fail:
	if (r->stream)
		fclose(r->stream);
	if (r->gz)
		gzclose(r->gz);
	free(r->path);
	free(r);
	return NULL;
}

FILE *record__stream(struct record *r)
{
	return r->stream;
}

void record__sync(struct record *r)
{
	fflush(r->stream);
	if (gzflush(r->gz, Z_SYNC_FLUSH) != Z_OK && !r->failed)
		r->failed = errno ? errno : EIO;
}

int record__close(struct record *r)
{
	int ret = 0;

	if (!r)
		return 0;
	if (fclose(r->stream) && !r->failed)
		r->failed = errno ? errno : EIO;
	if (gzclose(r->gz) != Z_OK && !r->failed)
		r->failed = errno ? errno : EIO;
	if (r->failed) {
		fprintf(stderr, "asyncprobe: writing %s failed: %s\n", r->path,
			strerror(r->failed));
		ret = -1;
	}
	free(r->path);
	free(r);
	return ret;
}

struct record_reader {
	gzFile gz;
	char *path;
	json_t *header;
	char *line;
	size_t cap;
	unsigned long lineno;
};

/* One line without its newline: 1, 0 at the end, -1 on an error. */
static int line_read(struct record_reader *r, char *err, size_t errlen)
{
	size_t len = 0;
	int errnum;

	for (;;) {
		if (r->cap - len < 2) {
			size_t cap = r->cap ? r->cap * 2 : 65536;
			char *p;

			if (cap > LINE_MAX_BYTES) {
				snprintf(err, errlen,
					 "%s is corrupt: line %lu is over %u "
					 "bytes",
					 r->path, r->lineno + 1,
					 LINE_MAX_BYTES);
				return -1;
			}
			p = realloc(r->line, cap);
			if (!p) {
				snprintf(err, errlen, "out of memory");
				return -1;
			}
			r->line = p;
			r->cap = cap;
		}
		if (!gzgets(r->gz, r->line + len, (int)(r->cap - len)))
			break;
		len += strlen(r->line + len);
		if (len && r->line[len - 1] == '\n') {
			r->line[len - 1] = '\0';
			r->lineno++;
			return 1;
		}
		if (gzeof(r->gz))
			break;
	}
	gzerror(r->gz, &errnum);
	if (errnum == Z_BUF_ERROR || (len && errnum == Z_OK)) {
		snprintf(err, errlen,
			 "%s is truncated after line %lu (the recording was "
			 "cut short)",
			 r->path, r->lineno);
		return -1;
	}
	if (errnum != Z_OK && errnum != Z_STREAM_END) {
		const char *why = gzerror(r->gz, &errnum);
		size_t plen = strlen(r->path);

		/* zlib puts the path first: it is said already */
		if (!strncmp(why, r->path, plen) &&
		    !strncmp(why + plen, ": ", 2))
			why += plen + 2;
		snprintf(err, errlen, "%s is corrupt after line %lu: %s",
			 r->path, r->lineno, why);
		return -1;
	}
	return 0;
}

static json_t *line_parse(struct record_reader *r, char *err, size_t errlen)
{
	json_error_t je;
	json_t *ev = json_loads(r->line, JSON_REJECT_DUPLICATES, &je);

	if (!ev || !json_is_object(ev) ||
	    !json_is_string(json_object_get(ev, "event"))) {
		snprintf(err, errlen,
			 "%s is corrupt: line %lu is not an asyncprobe event "
			 "(%s)",
			 r->path, r->lineno, ev ? "no \"event\"" : je.text);
		json_decref(ev);
		return NULL;
	}
	return ev;
}

struct record_reader *record__open(const char *path, char *err, size_t errlen)
{
	struct record_reader *r = calloc(1, sizeof(*r));
	json_t *format;
	int rc;

	if (!r) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->path = strdup(path);
	errno = 0;
	r->gz = r->path ? gzopen(path, "rb") : NULL;
	if (!r->gz) {
		snprintf(err, errlen, "cannot open %s: %s", path,
			 strerror(errno ? errno : ENOMEM));
		goto fail;
	}
	rc = line_read(r, err, errlen);
	/* a gzip stream cut short is truncated; anything else is foreign */
	if (rc < 0 && !gzdirect(r->gz))
		goto fail;
	if (!rc) {
		snprintf(err, errlen, "%s is empty: not a record file", path);
		goto fail;
	}
	if (rc > 0)
		r->header = json_loads(r->line, 0, NULL);
	if (!json_is_object(r->header) ||
	    !json_is_string(json_object_get(r->header, "event")) ||
	    strcmp(json_string_value(json_object_get(r->header, "event")),
		   "record")) {
		snprintf(err, errlen,
			 "%s is not an asyncprobe record (make one with "
			 "`asyncprobe record -p PID -o FILE`)",
			 path);
		goto fail;
	}
	format = json_object_get(r->header, "format");
	if (!json_is_integer(format) || json_integer_value(format) < 1) {
		snprintf(err, errlen, "%s has no valid format number", path);
		goto fail;
	}
	if (json_integer_value(format) > RECORD_FORMAT) {
		snprintf(err, errlen,
			 "%s was written by a newer asyncprobe (format %lld); "
			 "this one reads format %d",
			 path, (long long)json_integer_value(format),
			 RECORD_FORMAT);
		goto fail;
	}
	return r;
fail:
	record__free(r);
	return NULL;
}

const json_t *record__header(const struct record_reader *r)
{
	return r->header;
}

int record__next(struct record_reader *r, json_t **ev, char *err, size_t errlen)
{
	int rc;

	do {
		rc = line_read(r, err, errlen);
	} while (rc == 1 && !r->line[0]);
	if (rc <= 0)
		return rc;
	*ev = line_parse(r, err, errlen);
	return *ev ? 1 : -1;
}

void record__free(struct record_reader *r)
{
	if (!r)
		return;
	if (r->gz)
		gzclose(r->gz);
	json_decref(r->header);
	free(r->line);
	free(r->path);
	free(r);
}
