// SPDX-License-Identifier: MIT
/*
 * Lines of /proc/PID/net/{tcp,udp}{,6} and /proc/PID/net/unix as the
 * target's network namespace shows them (a unix socket's path is any name
 * the target bound).
 *
 * Input: which parser (1 byte: inet, inet6, unix), then the line, copied
 * with a NUL.  Results go to heap buffers of the callers' sizes: ASan sees
 * a write past them.  Seeds: real lines of sockets of each kind.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "fdinfo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line, *local = malloc(80), *remote = malloc(80),
		    *path = malloc(256);
	unsigned long inode;
	int listening;

	line = size ? malloc(size) : NULL;
	if (line && local && remote && path) {
		memcpy(line, data + 1, size - 1);
		line[size - 1] = '\0';
		if (data[0] % 3 == 2)
			fd__parse_unix_line(line, &inode, path, 256);
		else
			fd__parse_inet_line(line, data[0] % 3, &inode, local,
					    remote, 80, &listening);
	}
	free(line);
	free(local);
	free(remote);
	free(path);
	return 0;
}
