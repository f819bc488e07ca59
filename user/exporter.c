// SPDX-License-Identifier: MIT
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "exporter.h"

#define CONN_LIMIT 512	  /* concurrent connections */
#define CONN_TIMEOUT_S 10 /* a client that sends nothing this long goes */
#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct exporter {
	struct MHD_Daemon *d;
	exporter_write metrics, page;
	void *ctx;
	int epfd;
	char address[INET6_ADDRSTRLEN + 16];
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned int code,
			     const char *type, char *body, size_t len,
			     enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, body, mode);
	if (!r) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *conn,
				  unsigned int code, const char *text)
{
	return reply(conn, code, "text/plain; charset=utf-8", (char *)text,
		     strlen(text), MHD_RESPMEM_PERSISTENT);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
				  const char *url, const char *method,
				  const char *version, const char *upload_data,
				  size_t *upload_data_size, void **req_ctx)
{
	struct exporter *e = cls;
	exporter_write write;
	const char *type;
	char *body = NULL;
	size_t len = 0;
	FILE *out;
	int err;

	(void)version;
	(void)upload_data;
	(void)req_ctx;
	/* a request body is not wanted: say so without reading it */
	*upload_data_size = 0;
	if (strcmp(method, MHD_HTTP_METHOD_GET) &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
				  "only GET and HEAD\n");
	if (!strcmp(url, "/metrics")) {
		write = e->metrics;
		type = METRICS_TYPE;
	} else if (!strcmp(url, "/")) {
		write = e->page;
		type = "text/html; charset=utf-8";
	} else {
		return reply_text(conn, MHD_HTTP_NOT_FOUND,
				  "not found: the metrics are at /metrics\n");
	}
	out = open_memstream(&body, &len);
	if (!out)
		return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
				  "out of memory\n");
	err = write(e->ctx, out);
	if (fclose(out) || err) {
		free(body);
		return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
				  "could not gather the metrics\n");
	}
	return reply(conn, MHD_HTTP_OK, type, body, len, MHD_RESPMEM_MUST_FREE);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	fputs("asyncprobe: http: ", stderr);
	vfprintf(stderr, fmt, ap);
}

/* [ADDR:]PORT -> a socket address; ADDR is 127.0.0.1 when left out. */
static int address_parse(const char *listen, struct sockaddr_storage *ss,
			 socklen_t *sslen, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV | AI_PASSIVE },
			*res = NULL;
	char host[256] = "127.0.0.1";
	const char *colon = strrchr(listen, ':'), *port = listen;
	int rc;

	if (colon) {
		size_t n = (size_t)(colon - listen);

		port = colon + 1;
		if (n && listen[0] == '[' && listen[n - 1] == ']') {
			listen++;
			n -= 2;
		}
		if (n >= sizeof(host)) {
			snprintf(err, errlen, "listen address too long");
			return -1;
		}
		if (n) {
			memcpy(host, listen, n);
			host[n] = '\0';
		}
	}
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc || !res) {
		snprintf(err, errlen, "cannot resolve listen address '%s': %s",
			 host, gai_strerror(rc));
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sslen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

struct exporter *exporter__new(const char *listen, exporter_write metrics,
			       exporter_write page, void *ctx, int verbose,
			       char *err, size_t errlen)
{
	struct exporter *e = calloc(1, sizeof(*e));
	const union MHD_DaemonInfo *info;
	struct sockaddr_storage ss, bound;
	socklen_t sslen, blen = sizeof(bound);
	unsigned int flags = MHD_USE_EPOLL;
	char ip[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (!e) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	e->metrics = metrics;
	e->page = page;
	e->ctx = ctx;
	e->epfd = -1;
	if (address_parse(listen, &ss, &sslen, err, errlen))
		goto fail;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (verbose)
		flags |= MHD_USE_ERROR_LOG;
	e->d = MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, e, MHD_OPTION_SOCK_ADDR,
		(struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
		(unsigned int)CONN_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned int)CONN_TIMEOUT_S, MHD_OPTION_EXTERNAL_LOGGER,
		mhd_log, NULL, MHD_OPTION_END);
	if (!e->d) {
		snprintf(err, errlen,
			 "cannot listen on %s: the port may be in use, or the "
			 "address not local",
			 listen);
		goto fail;
	}
	info = MHD_get_daemon_info(e->d, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info || info->epoll_fd < 0) {
		snprintf(err, errlen, "libmicrohttpd has no epoll fd");
		goto fail;
	}
	e->epfd = info->epoll_fd;
	info = MHD_get_daemon_info(e->d, MHD_DAEMON_INFO_LISTEN_FD);
	if (info &&
	    !getsockname(info->listen_fd, (struct sockaddr *)&bound, &blen)) {
		if (bound.ss_family == AF_INET6) {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&bound;

			inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
			port = ntohs(a->sin6_port);
			snprintf(e->address, sizeof(e->address), "[%s]:%d", ip,
				 port);
		} else {
			struct sockaddr_in *a = (struct sockaddr_in *)&bound;

			inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
			port = ntohs(a->sin_port);
			snprintf(e->address, sizeof(e->address), "%s:%d", ip,
				 port);
		}
	}
	return e;
fail:
	exporter__free(e);
	return NULL;
}

int exporter__fd(const struct exporter *e)
{
	return e->epfd;
}

void exporter__run(struct exporter *e)
{
	MHD_run(e->d);
}

const char *exporter__address(const struct exporter *e)
{
	return e->address;
}

void exporter__free(struct exporter *e)
{
	if (!e)
		return;
	if (e->d)
		MHD_stop_daemon(e->d);
	free(e);
}
