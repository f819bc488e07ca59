// SPDX-License-Identifier: MIT
/* fd description: /proc/net parsers, captured sockets, live fds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include "fdinfo.h"

static void test_parse_tcp4(void **state)
{
	const char *line =
		"   3: 0100007F:1F90 0500000A:1538 01 00000000:00000000 "
		"00:00000000 00000000     0        0 12345 1 0000000000000000 "
		"20 4 30 10 -1\n";
	char local[80], remote[80];
	unsigned long ino;
	int listening;

	assert_int_equal(fd__parse_inet_line(line, 0, &ino, local, remote,
					     sizeof(local), &listening),
			 0);
	assert_int_equal(ino, 12345);
	assert_string_equal(local, "127.0.0.1:8080");
	assert_string_equal(remote, "10.0.0.5:5432");
	assert_false(listening);
}

static void test_parse_tcp6_listen(void **state)
{
	const char *line =
		"   0: 00000000000000000000000001000000:0050 "
		"00000000000000000000000000000000:0000 0A 00000000:00000000 "
		"00:00000000 00000000     0        0 777 1 0000000000000000 "
		"100 0 "
		"0 10 0\n";
	char local[80], remote[80];
	unsigned long ino;
	int listening;

	assert_int_equal(fd__parse_inet_line(line, 1, &ino, local, remote,
					     sizeof(local), &listening),
			 0);
	assert_int_equal(ino, 777);
	assert_string_equal(local, "[::1]:80");
	assert_true(listening);
}

static void test_parse_garbage(void **state)
{
	static const char *const bad[] = {
		"",
		"  sl  local_address rem_address   st tx_queue rx_queue tr",
		"   3: 0100007F:1F90",
		"   3: 0100007G:1F90 0500000A:1538 01 0:0 0:0 0 0 0 1",
		"   3: 0100007F:FFFFF 0500000A:1538 01 0:0 0:0 0 0 0 1",
	};
	char local[80], remote[80];
	unsigned long ino;
	int listening;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_not_equal(fd__parse_inet_line(bad[i], 0, &ino, local,
							 remote, sizeof(local),
							 &listening),
				     0);
}

static void test_parse_unix(void **state)
{
	char path[256];
	unsigned long ino;

	assert_int_equal(
		fd__parse_unix_line("0000000000000000: 00000002 00000000 "
				    "00010000 0001 01 33003 /run/app.sock\n",
				    &ino, path, sizeof(path)),
		0);
	assert_int_equal(ino, 33003);
	assert_string_equal(path, "/run/app.sock");
	assert_int_equal(fd__parse_unix_line("0000000000000000: 00000002 "
					     "00000000 00000000 0001 03 42\n",
					     &ino, path, sizeof(path)),
			 0);
	assert_string_equal(path, "");
	assert_int_not_equal(fd__parse_unix_line("Num RefCount Protocol", &ino,
						 path, sizeof(path)),
			     0);
}

static void test_format_socket(void **state)
{
	struct ap_fd cap = {
		.ino = 1,
		.mode = S_IFSOCK | 0777,
		.family = AF_INET,
		.sotype = SOCK_STREAM,
		.sport = 40000,
		.dport = 5432,
		.saddr = { 10, 0, 0, 1 },
		.daddr = { 10, 0, 0, 5 },
	};
	struct fd_desc d;

	assert_int_equal(fd__format_socket(&cap, &d), 0);
	assert_string_equal(d.kind, "tcp");
	assert_string_equal(d.target, "10.0.0.5:5432");
	assert_string_equal(d.local, "10.0.0.1:40000");

	cap.dport = 0;
	memset(cap.daddr, 0, sizeof(cap.daddr));
	assert_int_equal(fd__format_socket(&cap, &d), 0);
	assert_string_equal(d.target, "listen 10.0.0.1:40000");

	cap.family = AF_INET6;
	cap.sotype = SOCK_DGRAM;
	cap.dport = 53;
	memset(cap.daddr, 0, sizeof(cap.daddr));
	cap.daddr[15] = 1;
	assert_int_equal(fd__format_socket(&cap, &d), 0);
	assert_string_equal(d.kind, "udp6");
	assert_string_equal(d.target, "[::1]:53");

	cap.family = AF_UNIX;
	assert_int_not_equal(fd__format_socket(&cap, &d), 0);
	cap.mode = S_IFREG;
	assert_int_not_equal(fd__format_socket(&cap, &d), 0);
}

/* Our own fds, described live and from a capture after close. */
static void test_describe_live_and_closed(void **state)
{
	struct ap_fd cap = { 0 };
	struct fd_desc d;
	struct stat st;
	int p[2];

	assert_int_equal(pipe(p), 0);
	assert_int_equal(fd__describe(getpid(), p[0], &d), 0);
	assert_string_equal(d.kind, "pipe");
	assert_memory_equal(d.target, "pipe:[", 6);

	assert_int_equal(fstat(p[0], &st), 0);
	cap.ino = st.st_ino;
	cap.mode = st.st_mode;
	close(p[0]);
	close(p[1]);
	assert_int_equal(fd__describe_captured(getpid(), p[0], &cap, &d), 0);
	assert_string_equal(d.kind, "pipe");
	assert_non_null(strstr(d.target, "pipe:["));

	assert_int_not_equal(fd__describe(getpid(), 999999, &d), 0);
	assert_int_not_equal(fd__describe(getpid(), -1, &d), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_tcp4),
		cmocka_unit_test(test_parse_tcp6_listen),
		cmocka_unit_test(test_parse_garbage),
		cmocka_unit_test(test_parse_unix),
		cmocka_unit_test(test_format_socket),
		cmocka_unit_test(test_describe_live_and_closed),
	};

	return cmocka_run_group_tests_name("fdinfo", tests, NULL, NULL);
}
