// SPDX-License-Identifier: MIT
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "fdinfo.h"

/* "0100007F:1F90" (v4) or 32 hex digits ":port" (v6), words in host order */
static int parse_addr(const char *s, int v6, char *out, size_t len)
{
	char ip[INET6_ADDRSTRLEN];
	uint32_t words[4];
	unsigned int port;
	int nwords = v6 ? 4 : 1;

	for (int i = 0; i < nwords; i++) {
		char hex[9];

		memcpy(hex, s + 8 * i, 8);
		hex[8] = '\0';
		if (strspn(hex, "0123456789abcdefABCDEF") != 8)
			return -EINVAL;
		words[i] = (uint32_t)strtoul(hex, NULL, 16);
	}
	if (s[8 * nwords] != ':' ||
	    sscanf(s + 8 * nwords + 1, "%x", &port) != 1 || port > 65535)
		return -EINVAL;
	if (!inet_ntop(v6 ? AF_INET6 : AF_INET, words, ip, sizeof(ip)))
		return -EINVAL;
	snprintf(out, len, v6 ? "[%s]:%u" : "%s:%u", ip, port);
	return 0;
}

int fd__parse_inet_line(const char *line, int v6, unsigned long *inode,
			char *local, char *remote, size_t len, int *listening)
{
	char l[64], r[64];
	unsigned int st;

	if (sscanf(line, " %*d: %63s %63s %x %*s %*s %*s %*s %*s %lu", l, r,
		   &st, inode) != 4)
		return -EINVAL;
	if (strlen(l) != (v6 ? 37u : 13u) || strlen(r) != strlen(l))
		return -EINVAL;
	if (parse_addr(l, v6, local, len) || parse_addr(r, v6, remote, len))
		return -EINVAL;
	*listening = st == 0x0a; /* TCP_LISTEN */
	return 0;
}

int fd__parse_unix_line(const char *line, unsigned long *inode, char *path,
			size_t len)
{
	int pos = 0;

	if (sscanf(line, "%*x: %*x %*x %*x %*x %*x %lu%n", inode, &pos) != 1)
		return -EINVAL;
	line += pos;
	while (*line == ' ')
		line++;
	snprintf(path, len, "%.*s", (int)strcspn(line, "\n"), line);
	return 0;
}

static int find_inet(pid_t pid, const char *proto, int v6, unsigned long ino,
		     struct fd_desc *d)
{
	char path[64], line[512], local[80], remote[80];
	int found = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/net/%s", pid, proto);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (found && fgets(line, sizeof(line), f)) {
		unsigned long inode;
		int listening;

		if (fd__parse_inet_line(line, v6, &inode, local, remote,
					sizeof(local), &listening) ||
		    inode != ino)
			continue;
		snprintf(d->kind, sizeof(d->kind), "%s", proto);
		snprintf(d->local, sizeof(d->local), "%s", local);
		if (listening)
			snprintf(d->target, sizeof(d->target), "listen %s",
				 local);
		else
			snprintf(d->target, sizeof(d->target), "%s", remote);
		found = 0;
	}
	fclose(f);
	return found;
}

static int find_unix(pid_t pid, unsigned long ino, struct fd_desc *d)
{
	char path[64], line[512], sun[256];
	int found = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/net/unix", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (found && fgets(line, sizeof(line), f)) {
		unsigned long inode;

		if (fd__parse_unix_line(line, &inode, sun, sizeof(sun)) ||
		    inode != ino)
			continue;
		snprintf(d->kind, sizeof(d->kind), "unix");
		snprintf(d->target, sizeof(d->target), "%s",
			 sun[0] ? sun : "(unnamed)");
		found = 0;
	}
	fclose(f);
	return found;
}

int fd__describe(pid_t pid, int fd, struct fd_desc *d)
{
	static const char *const inet[] = { "tcp", "tcp6", "udp", "udp6" };
	char path[64], link[sizeof(d->target)];
	unsigned long ino;
	struct stat st;
	ssize_t n;

	memset(d, 0, sizeof(*d));
	if (fd < 0)
		return -EBADF;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return -errno;
	link[n] = '\0';

	if (sscanf(link, "socket:[%lu]", &ino) == 1) {
		for (size_t i = 0; i < 4; i++)
			if (!find_inet(pid, inet[i], i & 1, ino, d))
				return 0;
		if (!find_unix(pid, ino, d))
			return 0;
		snprintf(d->kind, sizeof(d->kind), "socket");
		snprintf(d->target, sizeof(d->target), "%s", link);
		return 0;
	}
	if (!strncmp(link, "pipe:", 5)) {
		snprintf(d->kind, sizeof(d->kind), "pipe");
	} else if (!strncmp(link, "anon_inode:", 11)) {
		snprintf(d->kind, sizeof(d->kind), "anon");
	} else if (!stat(path, &st) && S_ISFIFO(st.st_mode)) {
		snprintf(d->kind, sizeof(d->kind), "fifo");
	} else {
		snprintf(d->kind, sizeof(d->kind), "file");
	}
	snprintf(d->target, sizeof(d->target), "%s", link);
	return 0;
}

int fd__format_socket(const struct ap_fd *cap, struct fd_desc *d)
{
	char sa[INET6_ADDRSTRLEN], da[INET6_ADDRSTRLEN];
	int af = cap->family == AF_INET6 ? AF_INET6 : AF_INET;
	const char *proto;

	if ((cap->mode & S_IFMT) != S_IFSOCK ||
	    (cap->family != AF_INET && cap->family != AF_INET6))
		return -EINVAL;
	proto = cap->sotype == SOCK_STREAM  ? "tcp"
		: cap->sotype == SOCK_DGRAM ? "udp"
					    : "raw";
	if (!inet_ntop(af, cap->saddr, sa, sizeof(sa)) ||
	    !inet_ntop(af, cap->daddr, da, sizeof(da)))
		return -EINVAL;
	snprintf(d->kind, sizeof(d->kind), "%s%s", proto,
		 af == AF_INET6 ? "6" : "");
	snprintf(d->local, sizeof(d->local),
		 af == AF_INET6 ? "[%s]:%u" : "%s:%u", sa, cap->sport);
	if (cap->dport)
		snprintf(d->target, sizeof(d->target),
			 af == AF_INET6 ? "[%s]:%u" : "%s:%u", da, cap->dport);
	else
		snprintf(d->target, sizeof(d->target), "%s %s",
			 cap->sotype == SOCK_STREAM ? "listen" : "unconnected",
			 d->local);
	return 0;
}

/* Is fd @fd of @pid still the inode that was captured? */
static bool fd_same_inode(pid_t pid, int fd, const struct ap_fd *cap)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
	return !stat(path, &st) && st.st_ino == cap->ino &&
	       (st.st_mode & S_IFMT) == (cap->mode & S_IFMT);
}

int fd__describe_captured(pid_t pid, int fd, const struct ap_fd *cap,
			  struct fd_desc *d)
{
	memset(d, 0, sizeof(*d));
	if (!cap->mode)
		return fd__describe(pid, fd, d);
	if (!fd__format_socket(cap, d))
		return 0;
	if (fd_same_inode(pid, fd, cap) && !fd__describe(pid, fd, d))
		return 0;
	memset(d, 0, sizeof(*d));
	switch (cap->mode & S_IFMT) {
	case S_IFSOCK:
		snprintf(d->kind, sizeof(d->kind), "%s",
			 cap->family == AF_UNIX ? "unix" : "socket");
		if (cap->family == AF_UNIX && !find_unix(pid, cap->ino, d))
			return 0;
		snprintf(d->target, sizeof(d->target), "socket:[%llu]",
			 (unsigned long long)cap->ino);
		break;
	case S_IFIFO:
		snprintf(d->kind, sizeof(d->kind), "pipe");
		snprintf(d->target, sizeof(d->target), "pipe:[%llu]",
			 (unsigned long long)cap->ino);
		break;
	default:
		snprintf(d->kind, sizeof(d->kind), "file");
		snprintf(d->target, sizeof(d->target), "inode %llu (closed)",
			 (unsigned long long)cap->ino);
		break;
	}
	return 0;
}
