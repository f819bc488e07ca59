// SPDX-License-Identifier: MIT
/*
 * Lines of /proc/PID/net/{tcp,tcp6,udp,unix} as a target's namespace shows
 * them.  Input: one byte for which parser, then the line.  Seeds: real
 * lines.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "fdinfo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char local[128], remote[128], path[256];
	unsigned long inode;
	int listening;
	char *line;

	if (size < 1)
		return 0;
	line = malloc(size);
	if (!line)
		return 0;
	memcpy(line, data + 1, size - 1);
	line[size - 1] = '\0';
	switch (data[0] % 3) {
	case 0:
		fd__parse_inet_line(line, 0, &inode, local, remote,
				    sizeof(local), &listening);
		break;
	case 1:
		fd__parse_inet_line(line, 1, &inode, local, remote,
				    sizeof(local), &listening);
		break;
	default:
		fd__parse_unix_line(line, &inode, path, sizeof(path));
	}
	free(line);
	return 0;
}
