/* SPDX-License-Identifier: MIT */
/* What a file descriptor of the target is: file, pipe, socket peer. */
#ifndef FDINFO_H
#define FDINFO_H

#include <stddef.h>
#include <sys/types.h>
#include "asyncprobe.h"

struct fd_desc {
	char kind[16];	  /* tcp, tcp6, udp, udp6, unix, pipe, fifo, file, anon,
			     socket */
	char target[320]; /* peer address, path, ... */
	char local[80];	  /* local address of an inet socket */
};

/* Describe fd @fd of @pid now. 0, or -errno when it is gone. */
int fd__describe(pid_t pid, int fd, struct fd_desc *d);

/*
 * Describe fd @fd of @pid as the kernel captured it (@cap) when the thread
 * blocked; the fd may be closed or reused by now, so /proc is consulted
 * only to add a path or a unix socket name to an inode that still
 * matches.  0, or -ENOENT when nothing is known.
 */
int fd__describe_captured(pid_t pid, int fd, const struct ap_fd *cap,
			  struct fd_desc *d);

/* A captured inet socket as kind ("tcp", "udp6", ...), peer and local
 * address; -EINVAL when @cap is not an inet socket. */
int fd__format_socket(const struct ap_fd *cap, struct fd_desc *d);

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
