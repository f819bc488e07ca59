// SPDX-License-Identifier: MIT
/* Line-table decoders against tables and answers from real interpreters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "linetable.h"

#include "fixtures/linetable.h"
#include "fixtures/linetable_3_8.h"
#include "fixtures/linetable_3_9.h"
#include "fixtures/linetable_3_10.h"
#include "fixtures/linetable_3_11.h"
#include "fixtures/linetable_3_12.h"
#include "fixtures/linetable_3_13.h"
#include "fixtures/linetable_3_14.h"
#include "fixtures/linetable_3_15.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void check_cases(const struct lt_case *cases, size_t n)
{
	assert_true(n > 10);
	for (size_t i = 0; i < n; i++) {
		const struct lt_case *c = &cases[i];

		for (size_t j = 0; j < c->nexp; j++) {
			int got = py_linetable__line(c->kind, c->tab, c->len,
						     c->firstlineno,
						     c->exp[j].offset);
			if (got != c->exp[j].line)
				fail_msg("%s: offset %ld: line %d, want %d",
					 c->name, c->exp[j].offset, got,
					 c->exp[j].line);
		}
	}
}

static void test_lnotab_38(void **state)
{
	check_cases(lt_cases_3_8, N(lt_cases_3_8));
}

static void test_lnotab_39(void **state)
{
	check_cases(lt_cases_3_9, N(lt_cases_3_9));
}

static void test_linetable_310(void **state)
{
	check_cases(lt_cases_3_10, N(lt_cases_3_10));
}

static void test_locations_311(void **state)
{
	check_cases(lt_cases_3_11, N(lt_cases_3_11));
}

static void test_locations_312(void **state)
{
	check_cases(lt_cases_3_12, N(lt_cases_3_12));
}

static void test_locations_313(void **state)
{
	check_cases(lt_cases_3_13, N(lt_cases_3_13));
}

static void test_locations_314(void **state)
{
	check_cases(lt_cases_3_14, N(lt_cases_3_14));
}

static void test_locations_315(void **state)
{
	check_cases(lt_cases_3_15, N(lt_cases_3_15));
}

/* A frame that has not run yet (3.11 prev_instr before the first unit). */
static void test_locations_not_started(void **state)
{
	const struct lt_case *c = &lt_cases_3_11[1];

	assert_int_equal(py_linetable__line(PY_LT_LOCATIONS, c->tab, c->len,
					    c->firstlineno, -2),
			 c->firstlineno);
}

/* Truncated and garbage tables from a hostile target: no reads out of
 * bounds (ASan checks that), an answer of -1 or a line, never a crash. */
static void test_hostile_tables(void **state)
{
	static const enum py_linetable_kind kinds[] = { PY_LT_LNOTAB, PY_LT_310,
							PY_LT_LOCATIONS };
	uint8_t *buf;

	for (size_t k = 0; k < N(kinds); k++) {
		for (size_t i = 0; i < N(lt_cases_3_11); i++) {
			const struct lt_case *c = &lt_cases_3_11[i];

			for (size_t cut = 0; cut < c->len; cut++) {
				buf = malloc(cut ? cut : 1);
				memcpy(buf, c->tab, cut);
				py_linetable__line(kinds[k], buf, cut, 1, 4096);
				py_linetable__line(kinds[k], buf, cut, 1, 0);
				free(buf);
			}
		}
	}
	srand(42);
	for (int round = 0; round < 2000; round++) {
		size_t len = (size_t)(rand() % 64);

		buf = malloc(len ? len : 1);
		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)rand();
		for (size_t k = 0; k < N(kinds); k++)
			py_linetable__line(kinds[k], buf, len, 7, rand() % 256);
		free(buf);
	}
	assert_int_equal(py_linetable__line(PY_LT_LOCATIONS, NULL, 0, 5, 0),
			 -1);
	assert_int_equal(py_linetable__line(PY_LT_LOCATIONS, NULL, 8, 5, 0),
			 -1);
}

/* Found by fuzzing: deltas that take the line past what an int holds are
 * no line (and no signed overflow). */
static void test_line_overflow(void **state)
{
	static const uint8_t up[] = { 2, 127, 2, 127, 2, 127 };
	static const uint8_t down[] = { 2, 0x89, 2, 0x89 }; /* -119 each */
	/* 3.11+ long form: line delta +(2^29 - 1), then end line, columns */
	static const uint8_t big[] = { 0xf0, 0x7e, 0x7f, 0x7f, 0x7f,
				       0x3f, 0,	   0,	 0 };

	assert_int_equal(py_linetable__line(PY_LT_LNOTAB, up, sizeof(up),
					    INT_MAX - 100, 10),
			 -1);
	assert_int_equal(py_linetable__line(PY_LT_LNOTAB, down, sizeof(down),
					    INT_MIN + 100, 10),
			 -1);
	assert_int_equal(
		py_linetable__line(PY_LT_310, up, sizeof(up), INT_MAX - 100, 5),
		-1);
	assert_int_equal(py_linetable__line(PY_LT_LOCATIONS, big, sizeof(big),
					    INT_MAX - 5, 0),
			 -1);
	assert_int_equal(
		py_linetable__line(PY_LT_LNOTAB, up, sizeof(up), 1, 10),
		1 + 3 * 127);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lnotab_38),
		cmocka_unit_test(test_lnotab_39),
		cmocka_unit_test(test_linetable_310),
		cmocka_unit_test(test_locations_311),
		cmocka_unit_test(test_locations_312),
		cmocka_unit_test(test_locations_313),
		cmocka_unit_test(test_locations_314),
		cmocka_unit_test(test_locations_315),
		cmocka_unit_test(test_locations_not_started),
		cmocka_unit_test(test_line_overflow),
		cmocka_unit_test(test_hostile_tables),
	};

	return cmocka_run_group_tests_name("linetable", tests, NULL, NULL);
}
