// SPDX-License-Identifier: MIT
/*
 * _Py_DebugOffsets as real interpreters (Debian 3.13, 3.14, 3.15) carry
 * it, parsed and compared with the same layout generated from their
 * headers; then the same image damaged in every way a hostile target
 * could damage it.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "pydebug.h"
#include "fixtures/debug_offsets_3_13.h"
#include "fixtures/debug_offsets_3_14.h"
#include "fixtures/debug_offsets_3_15.h"

static void check(const uint8_t *blob, size_t len,
		  const struct py_offsets *want)
{
	struct py_offsets got;
	char err[256] = "";

	if (py_debug__parse(blob, len, &got, err, sizeof(err)))
		fail_msg("parse failed: %s", err);
#define EQ(f)                                                                  \
	do {                                                                   \
		if ((long)got.f != (long)want->f)                              \
			fail_msg("%d.%d " #f ": %ld, headers say %ld",         \
				 want->major, want->minor, (long)got.f,        \
				 (long)want->f);                               \
	} while (0)
	EQ(major);
	EQ(minor);
	EQ(linetable_kind);
	EQ(instr_kind);
	EQ(owner_cstack);
	EQ(code_ptr_tag_mask);
	EQ(runtime_interpreters_head);
	EQ(interp_next);
	EQ(interp_threads_head);
	EQ(tstate_next);
	EQ(tstate_thread_id);
	EQ(tstate_native_thread_id);
	EQ(tstate_frame);
	EQ(cframe_current_frame);
	EQ(frame_code);
	EQ(frame_previous);
	EQ(frame_instr);
	EQ(frame_owner);
	EQ(interp_gil_ptr);
	EQ(gil_last_holder);
	EQ(gil_size);
	EQ(interp_gc_collecting);
	EQ(code_filename);
	EQ(code_name);
	EQ(code_qualname);
	EQ(code_firstlineno);
	EQ(code_linetable);
	EQ(code_adaptive);
	EQ(unicode_state);
	EQ(unicode_length);
	EQ(unicode_ascii_data);
	EQ(unicode_compact_data);
	EQ(frame_localsplus);
	EQ(code_localsplusnames);
	EQ(tuple_size);
	EQ(tuple_items);
	EQ(float_value);
	EQ(bytes_size);
	EQ(bytes_data);
	EQ(object_type);
#undef EQ
}

static void test_313(void **state)
{
	check(dbg_blob_3_13, sizeof(dbg_blob_3_13), &dbg_expect_3_13);
}

static void test_314(void **state)
{
	check(dbg_blob_3_14, sizeof(dbg_blob_3_14), &dbg_expect_3_14);
}

static void test_315(void **state)
{
	check(dbg_blob_3_15, sizeof(dbg_blob_3_15), &dbg_expect_3_15);
}

static int parse(const uint8_t *blob, size_t len, char *err, size_t errlen)
{
	struct py_offsets o;

	return py_debug__parse(blob, len, &o, err, errlen);
}

static void test_rejects(void **state)
{
	const struct py_debug_layout *l = py_debug__layout(3, 14);
	uint8_t b[sizeof(dbg_blob_3_14)];
	uint64_t v;
	char err[256];

	assert_non_null(l);
	/* not 3.13+ at all */
	memcpy(b, dbg_blob_3_14, sizeof(b));
	memcpy(b, "notdebug", 8);
	assert_int_equal(parse(b, sizeof(b), err, sizeof(err)), -ENOENT);
	assert_int_equal(parse(b, 4, err, sizeof(err)), -ENOENT);

	/* a version with no layout row: named in the message */
	memcpy(b, dbg_blob_3_14, sizeof(b));
	v = 0x03630000; /* 3.99 */
	memcpy(b + l->version, &v, sizeof(v));
	assert_int_equal(parse(b, sizeof(b), err, sizeof(err)), -ENOTSUP);
	assert_non_null(strstr(err, "Python 3.99"));
	assert_non_null(strstr(err, "3.14"));

	/* free-threaded */
	memcpy(b, dbg_blob_3_14, sizeof(b));
	v = 1;
	memcpy(b + l->free_threaded, &v, sizeof(v));
	assert_int_equal(parse(b, sizeof(b), err, sizeof(err)), -ENOTSUP);
	assert_non_null(strstr(err, "free-threaded"));

	/* an offset outside its struct */
	memcpy(b, dbg_blob_3_14, sizeof(b));
	v = 1u << 30;
	memcpy(b + l->tstate_next, &v, sizeof(v));
	assert_int_equal(parse(b, sizeof(b), err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "tstate_next"));
	/* ... or so far past it that offset + size wraps to a small number
	 * (found by fuzz_pytasks: it read before a task's bytes) */
	memcpy(b, dbg_blob_3_14, sizeof(b));
	v = UINT64_MAX;
	memcpy(b + l->pyobject_ob_type, &v, sizeof(v));
	assert_int_equal(parse(b, sizeof(b), err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "pyobject_ob_type"));

	/* a struct size of zero, or absurd */
	memcpy(b, dbg_blob_3_14, sizeof(b));
	v = 0;
	memcpy(b + l->code_size, &v, sizeof(v));
	assert_int_equal(parse(b, sizeof(b), err, sizeof(err)), -EINVAL);

	/* short image */
	assert_int_equal(parse(dbg_blob_3_14, l->size - 1, err, sizeof(err)),
			 -EINVAL);
}

/* Random damage: a clean answer every time (ASan watches the reads). */
static void test_mutations(void **state)
{
	uint8_t b[sizeof(dbg_blob_3_15)];

	srand(7);
	for (int round = 0; round < 20000; round++) {
		memcpy(b, dbg_blob_3_15, sizeof(b));
		for (int k = 0; k < 1 + rand() % 4; k++)
			b[8 + rand() % (sizeof(b) - 8)] = (uint8_t)rand();
		char err[256];
		int r = parse(b, sizeof(b), err, sizeof(err));

		assert_true(r == 0 || r == -EINVAL || r == -ENOTSUP ||
			    r == -ENOENT);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_313),
		cmocka_unit_test(test_314),
		cmocka_unit_test(test_315),
		cmocka_unit_test(test_rejects),
		cmocka_unit_test(test_mutations),
	};

	return cmocka_run_group_tests_name("pydebug", tests, NULL, NULL);
}
