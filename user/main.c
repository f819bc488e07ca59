// SPDX-License-Identifier: MIT
/* asyncprobe: event-loop stalls and blocking syscalls of asyncio services */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "check.h"
#include "options.h"
#include "record.h"
#include "report.h"
#include "session.h"
#include "tasks.h"

/* Watch into a record file: the live JSON lines, compressed. */
static int record_run(struct ap_options *o, bool quiet)
{
	struct record *rec;
	char err[512];
	int ret;

	rec = record__create(o->output, o, err, sizeof(err));
	if (!rec) {
		fprintf(stderr, "asyncprobe: %s\n", err);
		return 1;
	}
	o->format = AP_FMT_JSON;
	o->out = record__stream(rec);
	ret = session__run(o, rec);
	if (record__close(rec))
		ret = 1;
	if (ret)
		unlink(o->output); /* nothing was recorded: no file */
	else if (!ret && !quiet)
		fprintf(stderr,
			"asyncprobe: recorded to %s; `asyncprobe report %s` "
			"summarizes it\n",
			o->output, o->output);
	return ret;
}

/* A live run in a report format: record to a temporary file, then write
 * the report of it (to -o FILE, or stdout). */
static int live_report_run(const struct ap_options *o)
{
	const char *dir = getenv("TMPDIR");
	struct ap_options rec = *o, rep = *o;
	char path[PATH_MAX];
	int fd, ret;

	if (o->format == AP_FMT_PPROF && !o->output && isatty(STDOUT_FILENO)) {
		fprintf(stderr, "asyncprobe: a pprof profile is binary: write "
				"it with -o FILE.pb.gz\n");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/asyncprobe-XXXXXX",
		 dir && *dir ? dir : "/tmp");
	fd = mkstemp(path);
	if (fd < 0) {
		fprintf(stderr, "asyncprobe: cannot create %s: %s\n", path,
			strerror(errno));
		return 1;
	}
	close(fd);
	rec.command = AP_CMD_RECORD;
	rec.output = path;
	ret = record_run(&rec, true);
	if (!ret) {
		rep.command = AP_CMD_REPORT;
		rep.record = path;
		rep.title = "live run";
		ret = report__run(&rep);
	}
	unlink(path);
	return ret;
}

/* The live view: the finding lines would scroll it away. */
static int top_run(struct ap_options *o)
{
	FILE *null = fopen("/dev/null", "we");
	int ret;

	if (!null) {
		perror("asyncprobe: /dev/null");
		return 1;
	}
	o->out = null;
	ret = session__run(o, NULL);
	fclose(null);
	return ret;
}

int main(int argc, char **argv)
{
	struct ap_options o;

	switch (args__parse(argc, argv, &o, stdout, stderr)) {
	case AP_PARSE_OK:
		break;
	case AP_PARSE_EXIT:
		return 0;
	default:
		return 2;
	}
	switch (o.command) {
	case AP_CMD_TASKS:
		return tasks__dump(&o);
	case AP_CMD_RECORD:
		return record_run(&o, false);
	case AP_CMD_REPORT:
		return report__run(&o);
	case AP_CMD_TOP:
		return top_run(&o);
	case AP_CMD_CHECK:
		return check__run(&o);
	default:
		if (o.format > AP_FMT_JSON)
			return live_report_run(&o);
		return session__run(&o, NULL);
	}
}
