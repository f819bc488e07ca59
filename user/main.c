// SPDX-License-Identifier: MIT
/* asyncprobe: event-loop stalls and blocking syscalls of asyncio services */
#include <stdio.h>
#include "options.h"
#include "session.h"
#include "tasks.h"

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
	if (o.command == AP_CMD_TASKS)
		return tasks__dump(&o);
	return session__run(&o);
}
