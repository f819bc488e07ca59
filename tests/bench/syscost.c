// SPDX-License-Identifier: MIT
/* ns per syscall for this (non-target) process: getppid, epoll_wait(0). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	long n = argc > 2 ? atol(argv[2]) : 2000000;
	int epfd = epoll_create1(0);
	struct epoll_event ev;
	double best = 1e18;

	if (argc < 2 || epfd < 0) {
		fprintf(stderr, "usage: syscost getppid|epoll [N]\n");
		return 2;
	}
	for (int round = 0; round < 5; round++) {
		double t0 = now(), dt;

		for (long i = 0; i < n; i++) {
			if (!strcmp(argv[1], "epoll"))
				epoll_wait(epfd, &ev, 1, 0);
			else
				syscall(SYS_getppid);
		}
		dt = (now() - t0) / n;
		if (dt < best)
			best = dt;
	}
	printf("%.1f\n", best);
	return 0;
}
