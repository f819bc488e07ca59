// SPDX-License-Identifier: MIT
/*
 * Frame decoding: CPython 3.11 objects laid out in this test's own memory
 * per the 3.11 table row, read back through the same cross-process path
 * (process_vm_readv on our own PID) the tool uses on a target.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "linetable.h"
#include "pysym.h"
#include "pytarget.h"

#include "fixtures/linetable.h"
#include "fixtures/linetable_3_11.h"

static struct py_target target;

static void put_u64(uint8_t *obj, size_t off, uint64_t v)
{
	memcpy(obj + off, &v, sizeof(v));
}

static uint8_t *make_ascii(const char *s)
{
	const struct py_offsets *o = target.off;
	size_t n = strlen(s);
	uint8_t *obj = calloc(1, o->unicode_ascii_data + n + 1);
	uint32_t state =
		(1u << 2) | (1u << 5) | (1u << 6); /* 1-byte, compact, ascii */

	put_u64(obj, o->unicode_length, n);
	memcpy(obj + o->unicode_state, &state, sizeof(state));
	memcpy(obj + o->unicode_ascii_data, s, n + 1);
	return obj;
}

static uint8_t *make_ucs2(const uint16_t *s, size_t n)
{
	const struct py_offsets *o = target.off;
	uint8_t *obj = calloc(1, o->unicode_compact_data + 2 * n + 2);
	uint32_t state = (2u << 2) | (1u << 5); /* 2-byte, compact, not ascii */

	put_u64(obj, o->unicode_length, n);
	memcpy(obj + o->unicode_state, &state, sizeof(state));
	memcpy(obj + o->unicode_compact_data, s, 2 * n);
	return obj;
}

static uint8_t *make_bytes(const uint8_t *data, size_t n)
{
	const struct py_offsets *o = target.off;
	uint8_t *obj = calloc(1, o->bytes_data + n + 1);

	put_u64(obj, o->bytes_size, n);
	memcpy(obj + o->bytes_data, data, n);
	return obj;
}

static uint8_t *make_code(uint8_t *file, uint8_t *name, uint8_t *qualname,
			  uint8_t *table, int firstlineno, size_t ncode)
{
	const struct py_offsets *o = target.off;
	uint8_t *obj = calloc(1, o->code_adaptive + ncode);
	int32_t first = firstlineno;

	put_u64(obj, o->code_filename, (uintptr_t)file);
	put_u64(obj, o->code_name, (uintptr_t)name);
	put_u64(obj, o->code_qualname, (uintptr_t)qualname);
	put_u64(obj, o->code_linetable, (uintptr_t)table);
	memcpy(obj + o->code_firstlineno, &first, sizeof(first));
	return obj;
}

static int setup(void **state)
{
	memset(&target, 0, sizeof(target));
	target.pid = getpid();
	target.major = 3;
	target.minor = 11;
	target.off = py_offsets__find(3, 11);
	return target.off ? 0 : -1;
}

static void test_unicode(void **state)
{
	static const uint16_t snowman[] = { 's', 0x2603, 'x' };
	uint8_t *a = make_ascii("handle_request"), *u = make_ucs2(snowman, 3);
	char out[64];

	assert_int_equal(pysym__decode_unicode(target.off, target.pid,
					       (uintptr_t)a, out, sizeof(out)),
			 0);
	assert_string_equal(out, "handle_request");
	assert_int_equal(pysym__decode_unicode(target.off, target.pid,
					       (uintptr_t)u, out, sizeof(out)),
			 0);
	assert_string_equal(out, "s\xe2\x98\x83x");
	/* capped to the buffer, still terminated */
	assert_int_equal(pysym__decode_unicode(target.off, target.pid,
					       (uintptr_t)a, out, 7),
			 0);
	assert_string_equal(out, "handle");
	free(a);
	free(u);
}

static void test_unicode_hostile(void **state)
{
	uint8_t *a = make_ascii("x");
	uint32_t bad_state = 0; /* not compact: refused */
	char out[64];

	assert_int_not_equal(pysym__decode_unicode(target.off, target.pid, 0x10,
						   out, sizeof(out)),
			     0);
	assert_string_equal(out, "");
	put_u64(a, target.off->unicode_length, (uint64_t)-5);
	assert_int_not_equal(pysym__decode_unicode(target.off, target.pid,
						   (uintptr_t)a, out,
						   sizeof(out)),
			     0);
	put_u64(a, target.off->unicode_length, 1ULL << 40); /* huge: capped */
	pysym__decode_unicode(target.off, target.pid, (uintptr_t)a, out,
			      sizeof(out));
	put_u64(a, target.off->unicode_length, 1);
	memcpy(a + target.off->unicode_state, &bad_state, sizeof(bad_state));
	assert_int_not_equal(pysym__decode_unicode(target.off, target.pid,
						   (uintptr_t)a, out,
						   sizeof(out)),
			     0);
	free(a);
}

/* A code object with a real 3.11 location table resolves to the lines
 * CPython itself reports for each instruction offset. */
static void test_resolve_lines(void **state)
{
	const struct lt_case *c = &lt_cases_3_11[2];
	uint8_t *file = make_ascii("/srv/app/report.py");
	uint8_t *name = make_ascii("crunch");
	uint8_t *qual = make_ascii("Report.crunch");
	uint8_t *table = make_bytes(c->tab, c->len);
	uint8_t *code =
		make_code(file, name, qual, table, c->firstlineno, 4096);
	struct py_symbolizer *s = pysym__new(&target);
	struct py_frame_info fi;

	assert_non_null(s);
	for (size_t j = 0; j < c->nexp; j++) {
		struct ap_frame f = {
			.code = (uintptr_t)code,
			.instr = (uintptr_t)code + target.off->code_adaptive +
				 (uint64_t)c->exp[j].offset,
		};

		assert_int_equal(pysym__resolve(s, &f, &fi), 0);
		assert_string_equal(fi.function, "Report.crunch");
		assert_string_equal(fi.file, "/srv/app/report.py");
		assert_int_equal(fi.line, c->exp[j].line);
	}
	pysym__free(s);
	free(file);
	free(name);
	free(qual);
	free(table);
	free(code);
}

/* Freed code objects get reused addresses: a new epoch re-validates. */
static void test_cache_revalidation(void **state)
{
	const struct lt_case *c = &lt_cases_3_11[0];
	uint8_t *file = make_ascii("a.py"), *n1 = make_ascii("first"),
		*n2 = make_ascii("second"), *table = make_bytes(c->tab, c->len);
	uint8_t *code = make_code(file, n1, n1, table, c->firstlineno, 64);
	struct py_symbolizer *s = pysym__new(&target);
	struct ap_frame f = { .code = (uintptr_t)code,
			      .instr = (uintptr_t)code +
				       target.off->code_adaptive };
	struct py_frame_info fi;

	assert_int_equal(pysym__resolve(s, &f, &fi), 0);
	assert_string_equal(fi.function, "first");
	put_u64(code, target.off->code_name, (uintptr_t)n2);
	put_u64(code, target.off->code_qualname, (uintptr_t)n2);
	assert_int_equal(pysym__resolve(s, &f, &fi), 0);
	assert_string_equal(fi.function, "first"); /* same epoch: cached */
	pysym__new_epoch(s);
	assert_int_equal(pysym__resolve(s, &f, &fi), 0);
	assert_string_equal(fi.function, "second");
	pysym__free(s);
	free(file);
	free(n1);
	free(n2);
	free(table);
	free(code);
}

static void test_resolve_hostile(void **state)
{
	uint8_t *file = make_ascii("b.py"), *name = make_ascii("f");
	uint8_t bogus_table[64] = { 0 };
	uint8_t *code;
	struct py_symbolizer *s = pysym__new(&target);
	struct py_frame_info fi;
	struct ap_frame f = { .code = 0x1000, .instr = 0x1000 };

	/* unreadable code object */
	assert_int_not_equal(pysym__resolve(s, &f, &fi), 0);
	assert_string_equal(fi.function, "<unknown>");
	assert_int_equal(fi.line, -1);
	/* a line table whose length is absurd: names still resolve */
	put_u64(bogus_table, target.off->bytes_size, 1ULL << 50);
	code = make_code(file, name, name, bogus_table, 10, 64);
	f.code = (uintptr_t)code;
	f.instr = (uintptr_t)code + target.off->code_adaptive + 4;
	assert_int_equal(pysym__resolve(s, &f, &fi), 0);
	assert_string_equal(fi.function, "f");
	assert_int_equal(fi.line, -1);
	pysym__free(s);
	free(code);
	free(file);
	free(name);
}

static int count_cb(void *ctx, uint32_t host, uint32_t ns, uint64_t tstate)
{
	(*(int *)ctx)++;
	return 0;
}

/* Thread list and frame chain walks, including cycles a hostile target
 * could build: both stay bounded. */
static void test_walks(void **state)
{
	const struct py_offsets *o = target.off;
	uint8_t runtime[256] = { 0 }, interp[256] = { 0 }, ts1[512] = { 0 },
		ts2[512] = { 0 }, cframe[64] = { 0 }, fr1[128] = { 0 },
		fr2[128] = { 0 };
	struct ap_frame frames[8];
	int n = 0;

	put_u64(runtime, o->runtime_interpreters_head, (uintptr_t)interp);
	put_u64(interp, o->interp_threads_head, (uintptr_t)ts1);
	put_u64(ts1, o->tstate_next, (uintptr_t)ts2);
	/* both claim this (single-threaded) test's tid; a tid that is not a
	 * live thread of the process is skipped */
	put_u64(ts1, (size_t)o->tstate_native_thread_id, (uint64_t)getpid());
	put_u64(ts2, (size_t)o->tstate_native_thread_id, (uint64_t)getpid());
	target.runtime = (uintptr_t)runtime;
	assert_int_equal(py_target__threads(&target, count_cb, &n), 2);
	assert_int_equal(n, 2);

	put_u64(ts1, o->tstate_frame, (uintptr_t)cframe);
	put_u64(cframe, (size_t)o->cframe_current_frame, (uintptr_t)fr1);
	put_u64(fr1, o->frame_code, 0xc0de1);
	put_u64(fr1, o->frame_instr, 0x1111);
	put_u64(fr1, o->frame_previous, (uintptr_t)fr2);
	put_u64(fr2, o->frame_code, 0xc0de2);
	assert_int_equal(py_target__walk(&target, (uintptr_t)ts1, frames, 8),
			 2);
	assert_int_equal(frames[0].code, 0xc0de1);
	assert_int_equal(frames[0].instr, 0x1111);
	assert_int_equal(frames[1].code, 0xc0de2);

	put_u64(fr2, o->frame_previous, (uintptr_t)fr1); /* a cycle */
	assert_int_equal(py_target__walk(&target, (uintptr_t)ts1, frames, 8),
			 8);
	put_u64(ts2, o->tstate_next, (uintptr_t)ts1); /* a cycle */
	n = 0;
	assert_true(py_target__threads(&target, count_cb, &n) <= 4096 * 64);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unicode),
		cmocka_unit_test(test_unicode_hostile),
		cmocka_unit_test(test_resolve_lines),
		cmocka_unit_test(test_cache_revalidation),
		cmocka_unit_test(test_resolve_hostile),
		cmocka_unit_test(test_walks),
	};

	return cmocka_run_group_tests_name("pysym", tests, setup, NULL);
}
