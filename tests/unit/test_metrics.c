// SPDX-License-Identifier: MIT
/* The exporter's call-site tables and exposition text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "metrics.h"
#include "sitetab.h"

#define ROWS 64

struct seen {
	int n;
	struct {
		char key[SITETAB_KEY_MAX], site[SITETAB_SITE_MAX];
		uint64_t count;
		double sum;
	} rows[ROWS];
};

static void collect(void *ctx, const char *key, const char *site,
		    uint64_t count, double sum)
{
	struct seen *s = ctx;

	assert_true(s->n < ROWS);
	snprintf(s->rows[s->n].key, SITETAB_KEY_MAX, "%s", key);
	snprintf(s->rows[s->n].site, SITETAB_SITE_MAX, "%s", site);
	s->rows[s->n].count = count;
	s->rows[s->n].sum = sum;
	s->n++;
}

static int find(const struct seen *s, const char *key, const char *site)
{
	for (int i = 0; i < s->n; i++)
		if (!strcmp(s->rows[i].key, key) &&
		    !strcmp(s->rows[i].site, site))
			return i;
	return -1;
}

static void scrape(struct sitetab *t, int top, struct seen *s)
{
	memset(s, 0, sizeof(*s));
	sitetab__promote(t, top);
	sitetab__foreach(t, collect, s);
}

static void test_top_and_other(void **state)
{
	struct sitetab *t = sitetab__new(16);
	struct seen s;
	int i;

	for (i = 0; i < 5; i++)
		sitetab__add(t, "read", "a.py:f", 0.5);
	for (i = 0; i < 3; i++)
		sitetab__add(t, "read", "b.py:g", 1);
	sitetab__add(t, "read", "c.py:h", 2);
	sitetab__add(t, "futex", "c.py:h", 4);
	scrape(t, 2, &s);
	/* the first scrape: the named sites carry everything they had */
	i = find(&s, "read", "a.py:f");
	assert_true(i >= 0);
	assert_int_equal(s.rows[i].count, 5);
	assert_true(s.rows[i].sum == 2.5);
	i = find(&s, "read", "b.py:g");
	assert_true(i >= 0);
	assert_int_equal(s.rows[i].count, 3);
	i = find(&s, "read", "other");
	assert_true(i >= 0);
	assert_int_equal(s.rows[i].count, 1);
	i = find(&s, "futex", "other");
	assert_true(i >= 0);
	assert_true(s.rows[i].sum == 4);
	assert_int_equal(find(&s, "read", "c.py:h"), -1);
	sitetab__free(t);
}

/* Whatever happens, each row only grows while it is shown, and what a
 * scraper adds up from one scrape to the next (a new row counting from 0)
 * is exactly what was counted in between: nothing lost, nothing twice. */
static void test_monotonic(void **state)
{
	struct sitetab *t = sitetab__new(8);
	static const char *sites[] = { "a", "b", "c", "d", "e", "f",
				       "g", "h", "i", "j", "k", "l" };
	static struct seen prev, now;

	srandom(7);
	memset(&prev, 0, sizeof(prev));
	for (int round = 0; round < 300; round++) {
		int adds = (int)(random() % 20);
		uint64_t increase = 0;

		for (int i = 0; i < adds; i++) {
			/* skewed differently now and then: the top changes */
			int k = (int)(random() % 12);

			if (round % 50 > 25)
				k = 11 - k / 2;
			sitetab__add(t, "", sites[k], 1);
		}
		scrape(t, 3, &now);
		assert_true(now.n <= 3 + 1);
		for (int i = 0; i < now.n; i++) {
			int j = find(&prev, now.rows[i].key, now.rows[i].site);

			if (j >= 0) {
				assert_true(now.rows[i].count >=
					    prev.rows[j].count);
				increase +=
					now.rows[i].count - prev.rows[j].count;
			} else {
				increase += now.rows[i].count;
			}
		}
		assert_int_equal(increase, adds);
		prev = now;
	}
	assert_true(sitetab__overflow(t) > 0); /* 12 sites, room for 8 */
	sitetab__free(t);
}

static void test_escape_and_site(void **state)
{
	struct py_frame_info f[3] = {
		{ "loads", "/usr/lib/python3.11/json/__init__.py", 346 },
		{ "handler", "/srv/app/a\"b.py", 12 },
		{ "main", "/srv/app/main.py", 3 },
	};
	char buf[256], esc[512];

	metrics__call_site(f, 3, buf, sizeof(buf));
	assert_string_equal(buf, "/srv/app/a\"b.py:handler");
	assert_string_equal(metrics__escape(buf, esc, sizeof(esc)),
			    "/srv/app/a\\\"b.py:handler");
	/* only the standard library: the innermost frame */
	metrics__call_site(f, 1, buf, sizeof(buf));
	assert_string_equal(buf, "/usr/lib/python3.11/json/__init__.py:loads");
	metrics__call_site(f, 0, buf, sizeof(buf));
	assert_string_equal(buf, "unknown");
	assert_string_equal(metrics__escape("a\\b\nc", esc, sizeof(esc)),
			    "a\\\\b\\nc");
	/* cut short, never in the middle of an escape */
	assert_string_equal(metrics__escape("\"\"\"\"", esc, 6), "\\\"\\\"");
}

static char *render(struct ap_target_metrics *t, int n)
{
	struct ap_self_metrics self = { .version = "1.0",
					.libbpf = "v1.1",
					.targets_active = n };
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);

	assert_non_null(out);
	assert_int_equal(metrics__render(out, t, n, &self, 10), 0);
	fclose(out);
	return buf;
}

static void test_render(void **state)
{
	struct ap_loop_metrics loop = {
		.tid = 42,
		.busy_ns = 1500000000,
		.idle_ns = 500000000,
		.lag = { [0] = 3, [8] = 1, [AP_LAG_NBOUNDS] = 2 },
		.lag_sum_ns = 25000000000ULL,
	};
	struct ap_syscall_hist h = {
		.name = "read", .buckets = { [4] = 2 }, .count = 2, .sum = 0.03
	};
	struct sitetab *stalls = sitetab__new(8), *blocks = sitetab__new(8);
	struct ap_target_metrics t = {
		.pid = 7,
		.ns_pid = 1,
		.python = "3.11.2",
		.comm = "py\"thon",
		.nloops = 1,
		.loops = &loop,
		.stall_sites = stalls,
		.block_sites = blocks,
		.block_hist = &h,
		.nblock_hist = 1,
		.tasks_known = 1,
		.tasks_created = 10,
		.hygiene = { [AP_HY_FD_GROWTH] = 2, [AP_HY_LONG_AWAIT] = 1 },
		.nhygiene = AP_HY_LONG_AWAIT, /* no --await-threshold */
	};
	char *text;

	sitetab__add(stalls, "", "/srv/a.py:f", 0.2);
	sitetab__add(blocks, "read", "/srv/a.py:f", 0.015);
	text = render(&t, 1);
	/* cumulative buckets, +Inf is the count */
	assert_non_null(strstr(text,
			       "asyncprobe_event_loop_lag_seconds_bucket"
			       "{pid=\"7\",loop=\"42\",le=\"0.00025\"} 3\n"));
	assert_non_null(strstr(text, "asyncprobe_event_loop_lag_seconds_bucket"
				     "{pid=\"7\",loop=\"42\",le=\"0.1\"} 4\n"));
	assert_non_null(strstr(text,
			       "asyncprobe_event_loop_lag_seconds_bucket"
			       "{pid=\"7\",loop=\"42\",le=\"+Inf\"} 6\n"));
	assert_non_null(strstr(text, "asyncprobe_event_loop_lag_seconds_count"
				     "{pid=\"7\",loop=\"42\"} 6\n"));
	assert_non_null(strstr(text, "asyncprobe_event_loop_lag_seconds_sum"
				     "{pid=\"7\",loop=\"42\"} 25\n"));
	assert_non_null(strstr(
		text, "asyncprobe_event_loop_time_seconds_total{pid=\"7\","
		      "loop=\"42\",state=\"active\"} 1.5\n"));
	assert_non_null(strstr(text, "asyncprobe_event_loop_stalls_total{pid="
				     "\"7\",call_site=\"/srv/a.py:f\"} 1\n"));
	assert_non_null(strstr(
		text, "asyncprobe_blocking_syscall_seconds_total{pid=\"7\","
		      "syscall=\"read\",call_site=\"/srv/a.py:f\"} 0.015\n"));
	assert_non_null(strstr(
		text, "asyncprobe_blocking_syscall_duration_seconds_bucket{pid="
		      "\"7\",syscall=\"read\",le=\"0.025\"} 2\n"));
	assert_non_null(strstr(text, "comm=\"py\\\"thon\""));
	assert_non_null(strstr(text, "# TYPE asyncprobe_tasks_created_total "
				     "counter\nasyncprobe_tasks_created_total"
				     "{pid=\"7\"} 10\n"));
	/* no GC histogram without USDT timing: the family is left out */
	assert_null(strstr(text, "asyncprobe_gc_pause_seconds"));
	assert_non_null(strstr(text, "asyncprobe_build_info{version=\"1.0\","
				     "libbpf_version=\"v1.1\"} 1\n"));
	/* every family's samples come right after its own header */
	assert_null(strstr(text, "\n\n"));
	/* a hygiene kind not looked for has no series: no false 0 */
	assert_non_null(strstr(text, "asyncprobe_hygiene_findings_total{pid="
				     "\"7\",kind=\"fd_growth\"} 2\n"));
	assert_null(strstr(text, "kind=\"long_await\""));
	free(text);
	t.nhygiene = AP_HY_KINDS;
	text = render(&t, 1);
	assert_non_null(strstr(text, "asyncprobe_hygiene_findings_total{pid="
				     "\"7\",kind=\"long_await\"} 1\n"));
	free(text);
	sitetab__free(stalls);
	sitetab__free(blocks);
}

static void test_render_nothing(void **state)
{
	char *text = render(NULL, 0);

	assert_non_null(
		strstr(text, "asyncprobe_targets{state=\"active\"} 0\n"));
	assert_null(strstr(text, "asyncprobe_event_loop"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_top_and_other),
		cmocka_unit_test(test_monotonic),
		cmocka_unit_test(test_escape_and_site),
		cmocka_unit_test(test_render),
		cmocka_unit_test(test_render_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
