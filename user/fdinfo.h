/* SPDX-License-Identifier: MIT */
/* What a file descriptor of the target is: file, pipe, socket peer. */
#ifndef FDINFO_H
#define FDINFO_H

#include <stddef.h>
#include <sys/types.h>

struct fd_desc {
	char kind[16]; /* tcp, tcp6, udp, udp6, unix, pipe, fifo, file, anon, socket */
	char target[320]; /* peer address, path, ... */
	char local[80]; /* local address of an inet socket */
};

/* Describe fd @fd of @pid now. 0, or -errno when it is gone. */
int fd__describe(pid_t pid, int fd, struct fd_desc *d);

/*
 * Parse one entry line of /proc/net/{tcp,udp}{,6}.  Fills the socket
 * inode, local and remote "ip:port" ("[v6]:port").  0 or -EINVAL.
 */
int fd__parse_inet_line(const char *line, int v6, unsigned long *inode,
			char *local, char *remote, size_t len, int *listening);

/* Parse one entry line of /proc/net/unix: inode and path ("" if none). */
int fd__parse_unix_line(const char *line, unsigned long *inode, char *path,
			size_t len);

#endif
