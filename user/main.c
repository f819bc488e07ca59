// SPDX-License-Identifier: MIT
/* asyncprobe: event-loop stalls and blocking syscalls of asyncio services */
#include <stdio.h>
#include <unistd.h>
#include "options.h"
#include "record.h"
#include "report.h"
#include "session.h"
#include "tasks.h"

/* Watch into a record file: the live JSON lines, compressed. */
static int record_run(struct ap_options *o)
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
	else if (!ret)
		fprintf(stderr,
			"asyncprobe: recorded to %s; `asyncprobe report %s` "
			"summarizes it\n",
			o->output, o->output);
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
		return record_run(&o);
	case AP_CMD_REPORT:
		return report__run(&o);
	case AP_CMD_TOP:
		return top_run(&o);
	default:
		return session__run(&o, NULL);
	}
}
