// SPDX-License-Identifier: MIT
#include <string.h>
#include "syscalls.h"

const char *syscall__name(long nr)
{
	if (nr < 0 || (unsigned long)nr >= syscall_names_len)
		return NULL;
	return syscall_names[nr];
}

long syscall__nr(const char *name)
{
	for (unsigned int i = 0; i < syscall_names_len; i++)
		if (syscall_names[i] && !strcmp(syscall_names[i], name))
			return i;
	return -1;
}

/* syscalls whose first argument is a file descriptor worth describing */
static const char *const fd_first[] = {
	"read",	      "write",		 "pread64",
	"pwrite64",   "readv",		 "writev",
	"preadv",     "pwritev",	 "preadv2",
	"pwritev2",   "recvfrom",	 "recvmsg",
	"recvmmsg",   "sendto",		 "sendmsg",
	"sendmmsg",   "connect",	 "accept",
	"accept4",    "fsync",		 "fdatasync",
	"flock",      "fcntl",		 "ioctl",
	"ftruncate",  "fallocate",	 "sync_file_range",
	"getdents64", "splice",		 "tee",
	"epoll_wait", "epoll_pwait",	 "epoll_pwait2",
	"shutdown",   "lseek",		 "fstat",
	"sendfile",   "copy_file_range",
};

int syscall__fd_arg(long nr)
{
	const char *name = syscall__name(nr);

	if (!name)
		return 0;
	for (size_t i = 0; i < sizeof(fd_first) / sizeof(fd_first[0]); i++)
		if (!strcmp(name, fd_first[i]))
			return 1;
	return 0;
}
