/* SPDX-License-Identifier: MIT */
#ifndef SYSCALLS_H
#define SYSCALLS_H

/* generated at build time from the kernel's asm/unistd_64.h */
extern const char *const syscall_names[];
extern const unsigned int syscall_names_len;

/* "clock_nanosleep", or NULL for an unknown number */
const char *syscall__name(long nr);
/* the number of @name, or -1 */
long syscall__nr(const char *name);
/* does the syscall's first argument name a file descriptor? */
int syscall__fd_arg(long nr);

#endif
