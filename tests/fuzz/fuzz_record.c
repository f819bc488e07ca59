// SPDX-License-Identifier: MIT
/*
 * Record files (`asyncprobe record`): gzip'd JSON lines that come from
 * anyone's incident, whole, cut short or corrupt.
 *
 * Input: the file, read as /proc/self/fd/N of a memfd.  It is rendered in
 * every report format (text, json, folded, speedscope, pprof, html), plain
 * and --partial, to /dev/null.  Seeds: records of real runs of
 * tests/workloads/misbehave.py, whole and cut short.  The messages bad
 * files earn go to stderr, which run.sh closes (-close_fd_mask=2).
 */
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include "fuzz.h"
#include "options.h"
#include "report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum ap_format formats[] = {
		AP_FMT_TEXT,	   AP_FMT_JSON,	 AP_FMT_FOLDED,
		AP_FMT_SPEEDSCOPE, AP_FMT_PPROF, AP_FMT_HTML,
	};
	char path[64];
	int fd = fuzz_memfd(data, size, path, sizeof(path));

	if (fd < 0)
		return 0;
	for (int partial = 0; partial < 2; partial++)
		for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]);
		     i++) {
			struct ap_options o = {
				.command = AP_CMD_REPORT,
				.record = path,
				.output = "/dev/null",
				.format = formats[i],
				.partial = partial,
			};

			report__run(&o);
		}
	close(fd);
	return 0;
}
