// SPDX-License-Identifier: MIT
/*
 * CPython objects read out of a target: code objects, their str and bytes
 * members, line tables, frame chains, the interpreter's thread list.  The input
 * is a memory image that this harness maps at a fixed address in its own
 * process, so that pointers in it resolve through the same process_vm_readv
 * path that reads a real target; pointers elsewhere fail as they would there.
 *
 * Input: version row (1 byte), instruction (8 bytes, the frame's
 * instruction field), then the image, mapped at FUZZ_BASE: a code object
 * at its start.  Seeds are real objects: with FUZZ_GEN="PID MINOR CODE
 * OUT" set, the harness copies the code object at CODE of a live 3.MINOR
 * interpreter, with its name, qualname, filename and line table, into one
 * image, pointers moved to FUZZ_BASE, writes it to OUT and exits
 * (gen_seeds.py).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "pydebug.h"
#include "pysym.h"
#include "pytarget.h"
#include "pyversions.h"

#include "../unit/fixtures/debug_offsets_3_13.h"
#include "../unit/fixtures/debug_offsets_3_14.h"
#include "../unit/fixtures/debug_offsets_3_15.h"

#define FUZZ_BASE 0x7e0000000000ULL
#define IMAGE_MAX (256 * 1024)
#define HDR 9

static struct py_offsets rows[8]; /* 3.8 .. 3.15 */
static int nrows;
static uint8_t *image;
static size_t image_used;

static void rows_load(void)
{
	static const struct {
		const uint8_t *blob;
		size_t len;
	} dbg[] = {
		{ dbg_blob_3_14, sizeof(dbg_blob_3_14) },
		{ dbg_blob_3_15, sizeof(dbg_blob_3_15) },
	};
	char err[256];

	for (int minor = 8; minor <= 13; minor++) {
		const struct py_offsets *o = py_offsets__find(3, minor);

		if (o)
			rows[nrows++] = *o;
	}
	for (size_t i = 0; i < sizeof(dbg) / sizeof(dbg[0]); i++)
		if (!py_debug__parse(dbg[i].blob, dbg[i].len, &rows[nrows], err,
				     sizeof(err)))
			nrows++;
	(void)dbg_blob_3_13;
}

/* Copy the object at @addr of @pid (up to @len bytes, fewer near the end
 * of a mapping) to @out + *@pos, and keep only its first @keep(obj) bytes:
 * what follows it is someone else's memory.  Its new address, or 0. */
static uint64_t gen_copy(pid_t pid, uint64_t addr, size_t len, uint8_t *out,
			 size_t *pos, const struct py_offsets *o,
			 size_t (*keep)(const struct py_offsets *,
					const uint8_t *))
{
	uint64_t at = FUZZ_BASE + *pos;
	size_t n;

	if (!addr)
		return 0;
	for (; len >= 16; len /= 2)
		if (*pos + len <= IMAGE_MAX &&
		    !proc_read(pid, addr, out + *pos, len)) {
			n = keep(o, out + *pos);
			if (n < len)
				memset(out + *pos + n, 0, len - n);
			*pos += ((n < len ? n : len) + 15) & ~(size_t)15;
			return at;
		}
	return 0;
}

/* A str: header and characters, with the terminating NUL. */
static size_t str_size(const struct py_offsets *o, const uint8_t *obj)
{
	uint64_t n;
	uint32_t state;
	size_t kind;

	memcpy(&n, obj + o->unicode_length, sizeof(n));
	memcpy(&state, obj + o->unicode_state, sizeof(state));
	kind = (state >> 2) & 7;
	if (n > 4096 || !kind)
		return o->unicode_compact_data;
	return ((state >> 6) & 1 ? o->unicode_ascii_data
				 : o->unicode_compact_data) +
	       (n + 1) * kind;
}

/* A bytes object: header, data and its NUL. */
static size_t bytes_size(const struct py_offsets *o, const uint8_t *obj)
{
	uint64_t n;

	memcpy(&n, obj + o->bytes_size, sizeof(n));
	return n > 65536 ? o->bytes_data : o->bytes_data + n + 1;
}

static void gen_ptr(uint8_t *code, size_t off, uint64_t v)
{
	memcpy(code + off, &v, sizeof(v));
}

static int gen_seed(const char *spec)
{
	unsigned long long code;
	const struct py_offsets *o = NULL;
	uint8_t *out = calloc(1, HDR + IMAGE_MAX), *img = out + HDR;
	int pid, minor, row = -1;
	char path[512];
	size_t pos;
	uint64_t v, instr;
	FILE *f;

	if (!out ||
	    sscanf(spec, "%d %d %llx %511s", &pid, &minor, &code, path) != 4)
		return 1;
	for (int i = 0; i < nrows; i++)
		if (rows[i].minor == minor)
			o = &rows[row = i];
	if (!o || proc_read(pid, code, img, o->code_adaptive + 64))
		return 1;
	pos = (o->code_adaptive + 64 + 15) & ~(size_t)15;
	/* members: strings up to 512 bytes, the line table's bytes object */
	memcpy(&v, img + o->code_filename, 8);
	gen_ptr(img, o->code_filename,
		gen_copy(pid, v, 512, img, &pos, o, str_size));
	memcpy(&v, img + o->code_name, 8);
	gen_ptr(img, o->code_name,
		gen_copy(pid, v, 256, img, &pos, o, str_size));
	if (o->code_qualname >= 0) {
		memcpy(&v, img + o->code_qualname, 8);
		gen_ptr(img, (size_t)o->code_qualname,
			gen_copy(pid, v, 256, img, &pos, o, str_size));
	}
	memcpy(&v, img + o->code_linetable, 8);
	gen_ptr(img, o->code_linetable,
		gen_copy(pid, v, 1024, img, &pos, o, bytes_size));
	/* the third instruction: a pointer (3.11+) or an index */
	instr = o->instr_kind == PY_INSTR_POINTER
			? FUZZ_BASE + o->code_adaptive + 4
		: o->instr_kind == PY_INSTR_LASTI_UNITS ? 2
							: 4;
	out[0] = (uint8_t)row;
	memcpy(out + 1, &instr, sizeof(instr));
	f = fopen(path, "we");
	if (!f || fwrite(out, 1, HDR + pos, f) != HDR + pos || fclose(f))
		return 1;
	free(out);
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	rows_load();
	if (getenv("FUZZ_GEN"))
		exit(gen_seed(getenv("FUZZ_GEN")));
	image = mmap((void *)FUZZ_BASE, IMAGE_MAX, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (image != (void *)FUZZ_BASE) {
		fprintf(stderr,
			"fuzz_pyobjects: cannot map the image at %#llx\n",
			FUZZ_BASE);
		exit(1);
	}
	return 0;
}

static void image_load(const uint8_t *data, size_t size)
{
	if (size > IMAGE_MAX)
		size = IMAGE_MAX;
	memcpy(image, data, size);
	if (image_used > size)
		memset(image + size, 0, image_used - size);
	image_used = size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct py_target t = { .pid = getpid(), .major = 3 };
	struct py_frame_info info;
	struct py_symbolizer *s;
	struct ap_frame f;
	char buf[512];

	if (size < HDR || !nrows)
		return 0;
	t.off = &rows[data[0] % nrows];
	t.minor = t.off->minor;
	memcpy(&f.instr, data + 1, sizeof(f.instr));
	image_load(data + HDR, size - HDR);
	f.code = FUZZ_BASE;

	s = pysym__new(&t);
	if (!s)
		return 0;
	pysym__resolve(s, &f, &info);
	pysym__code(s, FUZZ_BASE, &info);
	/* the cache's re-validation path, after the object "changed" */
	pysym__new_epoch(s);
	pysym__resolve(s, &f, &info);
	for (size_t off = 0; off < 4096 && off + 8 <= image_used; off += 512)
		pysym__decode_unicode(t.off, t.pid, FUZZ_BASE + off, buf,
				      sizeof(buf));
	/* the same image as a runtime (its thread list) and as thread states
	 * (their frame chains), each frame symbolized */
	t.runtime = FUZZ_BASE;
	t.pthread_tid_off = -1;
	py_target__threads(&t, NULL, NULL);
	for (size_t off = 0; off < 4096 && off + 8 <= image_used; off += 256) {
		struct ap_frame frames[16];
		int n = py_target__walk(&t, FUZZ_BASE + off, frames, 16);

		for (int i = 0; i < n; i++)
			pysym__resolve(s, &frames[i], &info);
	}
	pysym__free(s);
	return 0;
}
