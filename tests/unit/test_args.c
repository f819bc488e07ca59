// SPDX-License-Identifier: MIT
/* Command-line parsing: defaults, every option, every bad value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "options.h"

static char outbuf[8192], errbuf[8192];

static enum ap_parse_result parse(struct ap_options *o, int argc, ...)
{
	char *argv[32] = { "asyncprobe" };
	enum ap_parse_result r;
	FILE *out, *err;
	va_list ap;

	va_start(ap, argc);
	for (int i = 1; i <= argc && i < 31; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	memset(outbuf, 0, sizeof(outbuf));
	memset(errbuf, 0, sizeof(errbuf));
	out = fmemopen(outbuf, sizeof(outbuf) - 1, "w");
	err = fmemopen(errbuf, sizeof(errbuf) - 1, "w");
	r = args__parse(argc + 1, argv, o, out, err);
	fclose(out);
	fclose(err);
	return r;
}

static void test_defaults(void **state)
{
	struct ap_options o;

	assert_int_equal(parse(&o, 2, "-p", "4711"), AP_PARSE_OK);
	assert_int_equal(o.pid, 4711);
	assert_true(o.duration_s == 0);
	assert_true(o.stall_ms == 100);
	assert_true(o.syscall_ms == 10);
	assert_int_equal(o.format, AP_FMT_TEXT);
}

static void test_all_options(void **state)
{
	struct ap_options o;

	assert_int_equal(parse(&o, 10, "--pid", "12", "-d", "2.5",
			       "--stall-threshold", "50", "--syscall-threshold",
			       "0.5", "--format", "json"),
			 AP_PARSE_OK);
	assert_int_equal(o.pid, 12);
	assert_true(o.duration_s == 2.5);
	assert_true(o.stall_ms == 50);
	assert_true(o.syscall_ms == 0.5);
	assert_int_equal(o.format, AP_FMT_JSON);
	assert_int_equal(parse(&o, 5, "-p", "1", "-s", "20", "-v"),
			 AP_PARSE_OK);
	assert_true(o.stall_ms == 20);
	assert_int_equal(o.verbose, 1);
}

static void test_help_and_version(void **state)
{
	struct ap_options o;

	assert_int_equal(parse(&o, 1, "-h"), AP_PARSE_EXIT);
	assert_non_null(strstr(outbuf, "EXAMPLES"));
	assert_int_equal(parse(&o, 1, "--version"), AP_PARSE_EXIT);
	assert_non_null(strstr(outbuf, "asyncprobe "));
}

static void test_errors(void **state)
{
	static const struct {
		const char *a, *b, *msg;
	} bad[] = {
		{ "-p", "abc", "invalid PID 'abc'" },
		{ "-p", "0", "invalid PID" },
		{ "-p", "-3", "invalid PID" },
		{ "-p", "99999999999", "invalid PID" },
		{ "-d", "0", "invalid duration" },
		{ "-d", "nan", "invalid duration" },
		{ "-d", "5x", "invalid duration" },
		{ "--stall-threshold", "-1", "invalid stall threshold" },
		{ "--syscall-threshold", "inf", "invalid syscall threshold" },
		{ "--format", "xml", "unknown format 'xml'" },
		{ "--bogus", "1", "unknown option '--bogus'" },
	};
	struct ap_options o;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(&o, 4, "-p", "1", bad[i].a, bad[i].b),
				 AP_PARSE_ERROR);
		if (!strstr(errbuf, bad[i].msg))
			fail_msg("%s %s: got '%s'", bad[i].a, bad[i].b, errbuf);
	}
	assert_int_equal(parse(&o, 0), AP_PARSE_ERROR);
	assert_non_null(strstr(errbuf, "-p PID is required"));
	assert_int_equal(parse(&o, 1, "-p"), AP_PARSE_ERROR);
	assert_non_null(strstr(errbuf, "needs a value"));
	assert_int_equal(parse(&o, 3, "-p", "1", "extra"), AP_PARSE_ERROR);
	assert_non_null(strstr(errbuf, "unexpected argument 'extra'"));
}

static void test_tasks_and_churn(void **state)
{
	struct ap_options o;

	assert_int_equal(parse(&o, 2, "-p", "7"), AP_PARSE_OK);
	assert_int_equal(o.command, AP_CMD_WATCH);
	assert_true(o.churn_threshold == 1000);
	assert_int_equal(parse(&o, 4, "-p", "7", "--churn-threshold", "250.5"),
			 AP_PARSE_OK);
	assert_true(o.churn_threshold == 250.5);
	assert_int_equal(parse(&o, 4, "-p", "7", "-c", "0"), AP_PARSE_ERROR);
	assert_non_null(strstr(errbuf, "invalid churn threshold"));
	/* the dump: a subcommand first, then the usual options */
	assert_int_equal(parse(&o, 5, "tasks", "-p", "99", "-f", "json"),
			 AP_PARSE_OK);
	assert_int_equal(o.command, AP_CMD_TASKS);
	assert_int_equal(o.pid, 99);
	assert_int_equal(o.format, AP_FMT_JSON);
	assert_int_equal(parse(&o, 1, "tasks"), AP_PARSE_ERROR);
	assert_non_null(strstr(errbuf, "-p PID is required"));
	/* only as the first word */
	assert_int_equal(parse(&o, 3, "-p", "1", "tasks"), AP_PARSE_ERROR);
	assert_non_null(strstr(errbuf, "unexpected argument 'tasks'"));
	assert_int_equal(parse(&o, 1, "--help"), AP_PARSE_EXIT);
	assert_non_null(strstr(outbuf, "asyncprobe tasks -p PID"));
	assert_non_null(strstr(outbuf, "--churn-threshold"));
}

static void test_cancel_threshold(void **state)
{
	struct ap_options o;

	assert_int_equal(parse(&o, 2, "-p", "7"), AP_PARSE_OK);
	assert_true(o.cancel_threshold_s == 10);
	assert_int_equal(parse(&o, 4, "-p", "7", "--cancel-threshold", "2.5"),
			 AP_PARSE_OK);
	assert_true(o.cancel_threshold_s == 2.5);
	assert_int_equal(parse(&o, 4, "-p", "7", "--cancel-threshold", "0.1"),
			 AP_PARSE_ERROR);
	assert_string_equal(errbuf,
			    "asyncprobe: invalid cancel threshold '0.1': give "
			    "seconds from 0.5 to 86400\n");
	assert_int_equal(parse(&o, 4, "-p", "7", "--cancel-threshold", "x"),
			 AP_PARSE_ERROR);
	assert_int_equal(parse(&o, 1, "--help"), AP_PARSE_EXIT);
	assert_non_null(strstr(outbuf, "--cancel-threshold SECONDS"));
}

static void test_await_threshold(void **state)
{
	struct ap_options o;

	assert_int_equal(parse(&o, 2, "-p", "7"), AP_PARSE_OK);
	assert_true(o.await_threshold_s == 0); /* off unless given */
	assert_int_equal(parse(&o, 4, "-p", "7", "--await-threshold", "2"),
			 AP_PARSE_OK);
	assert_true(o.await_threshold_s == 2 && o.cancel_threshold_s == 10);
	assert_int_equal(parse(&o, 4, "-p", "7", "--await-threshold", "1e9"),
			 AP_PARSE_ERROR);
	assert_string_equal(errbuf,
			    "asyncprobe: invalid await threshold '1e9': give "
			    "seconds from 0.5 to 86400\n");
	assert_int_equal(parse(&o, 1, "--help"), AP_PARSE_EXIT);
	assert_non_null(strstr(outbuf, "--await-threshold SECONDS"));
}

static void test_check(void **state)
{
	struct ap_options o;

	assert_int_equal(parse(&o, 1, "check"), AP_PARSE_OK);
	assert_int_equal(o.command, AP_CMD_CHECK);
	assert_int_equal(parse(&o, 3, "check", "-v", "-v"), AP_PARSE_OK);
	assert_int_equal(o.verbose, 2);
	assert_int_equal(parse(&o, 3, "check", "-p", "7"), AP_PARSE_ERROR);
	assert_string_equal(errbuf, "asyncprobe: `asyncprobe check` takes no "
				    "target: asyncprobe check [-v]\n");
	assert_int_equal(parse(&o, 2, "check", "now"), AP_PARSE_ERROR);
	assert_int_equal(parse(&o, 1, "--help"), AP_PARSE_EXIT);
	assert_non_null(strstr(outbuf, "asyncprobe check [-v]"));
}

static void test_exporter(void **state)
{
	struct ap_options o;

	assert_int_equal(parse(&o, 8, "-p", "5", "-p", "6", "-p", "5",
			       "--listen", "9477"),
			 AP_PARSE_OK);
	assert_int_equal(o.npids, 2);
	assert_int_equal(o.pids[1], 6);
	assert_int_equal(o.pid, 5);
	assert_string_equal(o.listen, "9477");
	assert_int_equal(o.top_sites, 10);
	assert_true(o.rescan_s == 5);
	assert_int_equal(parse(&o, 8, "-l", "[::1]:9477", "-m",
			       "uvicorn|gunicorn", "--rescan", "0.5",
			       "--top-sites", "3"),
			 AP_PARSE_OK);
	assert_int_equal(o.npids, 0);
	assert_string_equal(o.match, "uvicorn|gunicorn");
	assert_true(o.rescan_s == 0.5);
	assert_int_equal(o.top_sites, 3);
	assert_int_equal(parse(&o, 4, "-p", "1", "-l", "0.0.0.0:0"),
			 AP_PARSE_OK);

	assert_int_equal(parse(&o, 4, "-p", "1", "-l", "host:99999"),
			 AP_PARSE_ERROR);
	assert_string_equal(errbuf,
			    "asyncprobe: invalid listen address 'host:99999': "
			    "give PORT, ADDR:PORT or [IPV6]:PORT with a port "
			    "from 0 (any free one) to 65535\n");
	assert_int_equal(parse(&o, 4, "-p", "1", "-l", "[::1:80"),
			 AP_PARSE_ERROR);
	assert_int_equal(parse(&o, 4, "-p", "1", "-l", "http"), AP_PARSE_ERROR);
	assert_int_equal(parse(&o, 2, "-m", "(unclosed"), AP_PARSE_ERROR);
	assert_non_null(strstr(errbuf, "invalid --match regex '(unclosed'"));
	assert_int_equal(parse(&o, 2, "-m", ""), AP_PARSE_ERROR);
	assert_int_equal(parse(&o, 4, "-m", "x", "--rescan", "0"),
			 AP_PARSE_ERROR);
	assert_int_equal(parse(&o, 4, "-m", "x", "--top-sites", "0"),
			 AP_PARSE_ERROR);
	assert_string_equal(errbuf, "asyncprobe: invalid --top-sites '0': "
				    "give a number from 1 to 1000\n");
	assert_int_equal(parse(&o, 5, "tasks", "-p", "1", "-l", "9477"),
			 AP_PARSE_ERROR);
	assert_string_equal(errbuf,
			    "asyncprobe: `asyncprobe tasks` takes one -p PID "
			    "and no --listen or --match\n");
	assert_int_equal(parse(&o, 2, "-l", "9477"), AP_PARSE_ERROR);
	assert_non_null(
		strstr(errbuf, "-p PID is required (or --match REGEX)"));
}

static void test_record_report(void **state)
{
	struct ap_options o;

	assert_int_equal(
		parse(&o, 7, "record", "-p", "5", "-d", "30", "-o", "x.aprec"),
		AP_PARSE_OK);
	assert_int_equal(o.command, AP_CMD_RECORD);
	assert_string_equal(o.output, "x.aprec");
	assert_true(o.duration_s == 30);
	assert_int_equal(parse(&o, 6, "report", "--format", "folded", "x.aprec",
			       "-o", "out.txt"),
			 AP_PARSE_OK);
	assert_int_equal(o.command, AP_CMD_REPORT);
	assert_string_equal(o.record, "x.aprec");
	assert_string_equal(o.output, "out.txt");
	assert_int_equal(o.format, AP_FMT_FOLDED);
	assert_int_equal(parse(&o, 4, "report", "x.aprec", "-f", "speedscope"),
			 AP_PARSE_OK);
	assert_int_equal(o.format, AP_FMT_SPEEDSCOPE);

	assert_int_equal(parse(&o, 3, "record", "-p", "5"), AP_PARSE_ERROR);
	assert_string_equal(errbuf, "asyncprobe: `asyncprobe record` needs -o "
				    "FILE (and no --listen)\n");
	assert_int_equal(parse(&o, 1, "report"), AP_PARSE_ERROR);
	assert_non_null(strstr(errbuf, "needs the record file"));
	assert_int_equal(parse(&o, 3, "report", "a", "b"), AP_PARSE_ERROR);
	assert_non_null(strstr(errbuf, "unexpected argument 'b'"));
	assert_int_equal(parse(&o, 4, "report", "a", "-p", "1"),
			 AP_PARSE_ERROR);
	/* the live run writes the report formats at its end */
	assert_int_equal(
		parse(&o, 6, "-p", "1", "-f", "pprof", "-o", "x.pb.gz"),
		AP_PARSE_OK);
	assert_int_equal(o.format, AP_FMT_PPROF);
	assert_int_equal(parse(&o, 6, "-p", "1", "-f", "html", "-l", "9477"),
			 AP_PARSE_ERROR);
	assert_non_null(strstr(errbuf, "--format html is written at the end"));
	assert_int_equal(parse(&o, 5, "tasks", "-p", "1", "-f", "folded"),
			 AP_PARSE_ERROR);
	assert_string_equal(errbuf, "asyncprobe: unknown format 'folded': use "
				    "text or json\n");
	assert_int_equal(parse(&o, 4, "-p", "1", "-o", "x"), AP_PARSE_ERROR);
	assert_int_equal(parse(&o, 3, "top", "-p", "5"), AP_PARSE_OK);
	assert_int_equal(o.command, AP_CMD_TOP);
	assert_int_equal(parse(&o, 5, "top", "-p", "5", "-l", "9477"),
			 AP_PARSE_ERROR);
	assert_string_equal(errbuf, "asyncprobe: `asyncprobe top` is a view: "
				    "no --listen\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_all_options),
		cmocka_unit_test(test_help_and_version),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_tasks_and_churn),
		cmocka_unit_test(test_cancel_threshold),
		cmocka_unit_test(test_await_threshold),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_exporter),
		cmocka_unit_test(test_record_report),
	};

	return cmocka_run_group_tests_name("args", tests, NULL, NULL);
}
