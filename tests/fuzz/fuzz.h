/* SPDX-License-Identifier: MIT */
/* Shared by the libFuzzer harnesses (tests/fuzz/fuzz_*.c). */
#ifndef FUZZ_H
#define FUZZ_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

/* The input as a file (a memfd) that the code under test opens by path:
 * /proc/self/fd/N.  Returns the fd, or -1. */
static inline int fuzz_memfd(const uint8_t *data, size_t size, char *path,
			     size_t len)
{
	int fd = memfd_create("fuzz", MFD_CLOEXEC);

	if (fd < 0)
		return -1;
	if (size && write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return -1;
	}
	snprintf(path, len, "/proc/self/fd/%d", fd);
	return fd;
}

#endif
